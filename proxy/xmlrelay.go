package proxy

// Relaying a store's XML answers: checked to be the document asked for,
// copied byte for byte with only the values s3seal must translate replaced,
// and never held whole in memory.

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
)

// relayRewritten relays a store's XML answer after checking that its root
// element is root, with the text of some leaf elements replaced: rewrite
// gets each leaf's path (local names from the root) and text and returns the
// new text; false marks a value it could not translate (kept, and logged).
// A nil rewrite changes nothing. The rest of the document is checked to be
// well-formed as it streams; a flaw there cuts the answer off.
func (p *Proxy) relayRewritten(x *exchange, resp *http.Response, root string, rewrite func(path []string, text string) (string, bool)) error {
	src, err := startXMLAnswer(x, resp, root)
	if err != nil {
		return err
	}
	if rewrite == nil {
		rewrite = func(_ []string, text string) (string, bool) { return text, true }
	}
	kept, err := rewriteLeaves(x.w, src, rewrite)
	if err != nil {
		x.abort(fmt.Errorf("rewriting %s answer: %w", x.t.op(), err))
	}
	if kept > 0 {
		p.log.Warn("answer values s3seal could not translate were kept", slog.String("request_id", x.id),
			slog.String("op", x.t.op()), slog.Int("values", kept))
	}
	return nil
}

// Bounds on what the XML relays hold of a store's answer: the part before
// the root element, and any one token (a store could send a gigabyte of
// text in one element).
const (
	maxPrologue = 64 << 10
	maxToken    = 1 << 20
)

// startXMLAnswer checks that a store's answer is a <root> document and
// sends the client its headers, less the length (a rewrite may change it);
// the body is to be streamed from the returned reader.
func startXMLAnswer(x *exchange, resp *http.Response, root string) (*bufio.Reader, error) {
	src := bufio.NewReaderSize(resp.Body, maxPrologue)
	if err := checkRoot(src, root); err != nil {
		return nil, errBadAnswer(x, err)
	}
	h := x.w.Header()
	copyResponseHeader(h, resp)
	h.Del("Content-Length")
	h.Del("Content-Md5")
	x.w.WriteHeader(resp.StatusCode)
	return src, nil
}

// checkRoot peeks at an XML answer's root element, consuming nothing.
func checkRoot(src *bufio.Reader, root string) error {
	for n := 512; ; n *= 2 {
		b, err := src.Peek(min(n, maxPrologue))
		dec := xml.NewDecoder(bytes.NewReader(b))
		for {
			tok, terr := dec.RawToken()
			if terr != nil {
				break
			}
			if se, ok := tok.(xml.StartElement); ok {
				if se.Name.Local != root {
					return fmt.Errorf("answer is a <%s> document, want <%s>: %w", se.Name.Local, root, errWrongRoot)
				}
				return nil
			}
		}
		if err != nil || n >= maxPrologue {
			return fmt.Errorf("no <%s> document in the answer: %w", root, errWrongRoot)
		}
	}
}

// rewriteLeaves copies XML from src to dst byte for byte except the text of
// leaf elements, which rewrite replaces (see relayRewritten).
func rewriteLeaves(dst io.Writer, src *bufio.Reader, rewrite func(path []string, text string) (string, bool)) (int, error) {
	toks := newRawTokens(src)
	var (
		out     bytes.Buffer
		stack   []string
		text    strings.Builder
		inLeaf  bool // between a start tag and the next tag
		selfEnd bool // the open leaf is <a/>: nothing to rewrite
		held    []byte
		kept    int
	)
	flush := func() error {
		if out.Len() >= 32<<10 {
			if _, err := dst.Write(out.Bytes()); err != nil {
				return err
			}
			out.Reset()
		}
		return nil
	}
	for {
		tok, raw, err := toks.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return kept, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if inLeaf {
				out.Write(held)
			}
			held = held[:0]
			stack = append(stack, t.Name.Local)
			out.Write(raw)
			inLeaf = true
			selfEnd = bytes.HasSuffix(bytes.TrimSpace(raw), []byte("/>"))
			text.Reset()
		case xml.CharData:
			if inLeaf {
				text.Write(t)
				if held = append(held, raw...); len(held) > maxToken {
					return kept, fmt.Errorf("a value longer than %d bytes: %w", maxToken, errTokenTooLong)
				}
				continue
			}
			out.Write(raw)
		case xml.EndElement:
			if inLeaf && !selfEnd && len(stack) > 0 {
				v, ok := rewrite(stack, text.String())
				if !ok {
					kept++
				}
				if v == text.String() {
					out.Write(held)
				} else {
					out.WriteString(xmlEscape(v))
				}
			}
			held = held[:0]
			inLeaf = false
			stack = stack[:max(0, len(stack)-1)]
			out.Write(raw)
		default:
			if inLeaf {
				out.Write(held)
				held = held[:0]
				inLeaf = false
			}
			out.Write(raw)
		}
		if err := flush(); err != nil {
			return kept, err
		}
	}
	out.Write(toks.rest())
	_, err := dst.Write(out.Bytes())
	return kept, err
}

// rawTokens yields an XML document's tokens together with their exact input
// bytes, so a relay can copy a document byte for byte and replace only what
// it must. It checks what the decoder's RawToken does not: one root
// element, matching end tags, no text outside the root, and a bounded
// depth, so that a relayed answer is one well-formed document and no store
// input grows the relay's state without bound.
type rawTokens struct {
	dec      *xml.Decoder
	rec      *byteRecorder
	consumed int64 // input offset of rec.buf[0]
	open     []xml.Name
	rootDone bool
}

// maxDepth bounds element nesting: S3's documents nest a few levels.
const maxDepth = 64

// errNotOneDocument means an answer that is not one well-formed document.
var errNotOneDocument = errors.New("not one well-formed XML document")

func newRawTokens(src *bufio.Reader) *rawTokens {
	rec := &byteRecorder{r: src}
	return &rawTokens{dec: xml.NewDecoder(rec), rec: rec}
}

// next returns the next token and its bytes; io.EOF at the end.
func (t *rawTokens) next() (xml.Token, []byte, error) {
	tok, err := t.dec.RawToken()
	if err == io.EOF && (len(t.open) > 0 || !t.rootDone) {
		return nil, nil, fmt.Errorf("the answer ends at depth %d: %w", len(t.open), io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := t.check(tok); err != nil {
		return nil, nil, err
	}
	end := t.dec.InputOffset()
	raw := t.rec.take(end - t.consumed)
	t.consumed = end
	return tok, raw, nil
}

// check keeps the document's structure and refuses what breaks it.
func (t *rawTokens) check(tok xml.Token) error {
	switch tok := tok.(type) {
	case xml.StartElement:
		if len(t.open) == 0 && t.rootDone {
			return fmt.Errorf("a second root <%s>: %w", tok.Name.Local, errNotOneDocument)
		}
		if len(t.open) == maxDepth {
			return fmt.Errorf("elements nested deeper than %d: %w", maxDepth, errNotOneDocument)
		}
		t.open = append(t.open, tok.Name)
	case xml.EndElement:
		if len(t.open) == 0 || t.open[len(t.open)-1] != tok.Name {
			return fmt.Errorf("</%s> closes nothing open: %w", tok.Name.Local, errNotOneDocument)
		}
		t.open = t.open[:len(t.open)-1]
		t.rootDone = len(t.open) == 0
	case xml.CharData:
		if len(t.open) == 0 && len(bytes.TrimSpace(tok)) > 0 {
			return fmt.Errorf("text outside the root: %w", errNotOneDocument)
		}
	}
	return nil
}

// rest is what follows the last token (trailing whitespace).
func (t *rawTokens) rest() []byte { return t.rec.take(int64(len(t.rec.buf))) }

// byteRecorder hands bytes to the XML decoder one at a time (it then does no
// buffering of its own) and keeps them, so that the exact input bytes of each
// token can be copied out.
type byteRecorder struct {
	r   *bufio.Reader
	buf []byte
}

// errTokenTooLong means one XML token longer than maxToken.
var errTokenTooLong = errors.New("XML token too long")

func (b *byteRecorder) ReadByte() (byte, error) {
	if len(b.buf) >= maxToken {
		return 0, errTokenTooLong
	}
	c, err := b.r.ReadByte()
	if err == nil {
		b.buf = append(b.buf, c)
	}
	return c, err
}

func (b *byteRecorder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := b.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// take removes and returns (a copy of) the first n recorded bytes.
func (b *byteRecorder) take(n int64) []byte {
	n = min(n, int64(len(b.buf)))
	out := append([]byte(nil), b.buf[:n]...)
	b.buf = append(b.buf[:0], b.buf[n:]...)
	return out
}
