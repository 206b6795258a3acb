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
)

// relayRewritten relays a store's XML answer after checking that its root
// element is root, rewritten by rw (nil: unchanged). The rest of the
// document is checked to be well-formed as it streams; a flaw there cuts the
// answer off. Values rw could not translate are kept, and logged.
func (p *Proxy) relayRewritten(x *exchange, resp *http.Response, root string, rw *xmlRewrite) error {
	src, err := startXMLAnswer(x, resp, root)
	if err != nil {
		return err
	}
	if rw == nil {
		rw = &xmlRewrite{}
	}
	kept, err := rw.copy(x.w, src)
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

// xmlRewrite says what a relay changes in a document; everything else
// (unknown elements, namespaces, whitespace, entities) passes byte for byte.
type xmlRewrite struct {
	// leaf returns the new text of the leaf element at path (local names
	// from the root) and false for a value it could not translate (kept,
	// and counted). row holds the texts of the leaves of the row the leaf is
	// in, nil outside rows. nil leaf changes nothing.
	leaf func(path []string, text string, row map[string]string) (string, bool)
	// drop says to leave an element out, with all it holds.
	drop func(path []string) bool
	// row names the children of the root held whole until they end, so
	// that leaf sees the row's other leaves whatever their order (a
	// listing's <Size> is translated with its <ETag>).
	row string
}

// piece is a run of output: raw bytes, or a leaf's text to translate once
// its row has ended.
type piece struct {
	raw  []byte
	path []string
	text string // the leaf's text, raw its bytes as sent
}

// rewriter is the state of one xmlRewrite.copy.
type rewriter struct {
	*xmlRewrite
	out      *bufio.Writer
	stack    []string
	leaf     *piece // the open element, while it may be a leaf
	skipping int    // >0: inside a dropped element, at this depth
	inRow    bool
	rowOut   []piece // the open row's output
	rowLen   int
	rowTexts map[string]string
	kept     int
}

// copy copies src to dst, rewritten, and returns how many values were kept
// untranslated.
func (rw *xmlRewrite) copy(dst io.Writer, src *bufio.Reader) (int, error) {
	r := &rewriter{xmlRewrite: rw, out: bufio.NewWriterSize(dst, 32<<10)}
	toks := newRawTokens(src)
	for {
		tok, raw, err := toks.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return r.kept, err
		}
		if err := r.token(tok, raw); err != nil {
			return r.kept, err
		}
	}
	if _, err := r.out.Write(toks.rest()); err != nil {
		return r.kept, err
	}
	return r.kept, r.out.Flush()
}

// token handles one token and its bytes.
func (r *rewriter) token(tok xml.Token, raw []byte) error {
	switch t := tok.(type) {
	case xml.StartElement:
		if err := r.endLeaf(false); err != nil {
			return err
		}
		r.stack = append(r.stack, t.Name.Local)
		if r.skipping == 0 && r.drop != nil && r.drop(r.stack) {
			r.skipping = len(r.stack)
		}
		if len(r.stack) == 2 && r.row != "" && t.Name.Local == r.row {
			r.inRow, r.rowTexts = true, map[string]string{}
		}
		if err := r.emit(raw); err != nil {
			return err
		}
		if !bytes.HasSuffix(bytes.TrimSpace(raw), []byte("/>")) {
			r.leaf = &piece{path: append([]string(nil), r.stack...)}
		}
		return nil
	case xml.CharData:
		if r.leaf != nil {
			r.leaf.text += string(t)
			if r.leaf.raw = append(r.leaf.raw, raw...); len(r.leaf.raw) > maxToken {
				return fmt.Errorf("a value longer than %d bytes: %w", maxToken, errTokenTooLong)
			}
			return nil
		}
	case xml.EndElement:
		return r.end(raw)
	default:
		if r.leaf != nil {
			// A comment or instruction inside a value leaves it a value:
			// its text is what surrounds it.
			if r.leaf.raw = append(r.leaf.raw, raw...); len(r.leaf.raw) > maxToken {
				return fmt.Errorf("a value longer than %d bytes: %w", maxToken, errTokenTooLong)
			}
			return nil
		}
	}
	return r.emit(raw)
}

// end handles an end tag.
func (r *rewriter) end(raw []byte) error {
	if err := r.endLeaf(true); err != nil {
		return err
	}
	depth := len(r.stack)
	r.stack = r.stack[:depth-1]
	if err := r.emit(raw); err != nil {
		return err
	}
	if r.skipping == depth {
		r.skipping = 0
	}
	if r.inRow && depth == 2 {
		r.inRow = false
		r.flushRow()
	}
	return nil
}

// endLeaf closes the open element's text: as a leaf at its end tag, or, at
// anything else, as the plain bytes before it.
func (r *rewriter) endLeaf(isLeaf bool) error {
	l := r.leaf
	r.leaf = nil
	switch {
	case l == nil:
		return nil
	case !isLeaf || r.skipping > 0:
		return r.emit(l.raw)
	case !r.inRow:
		r.emitLeaf(*l, nil)
		return nil
	}
	if r.rowLen += len(l.raw); r.rowLen > maxToken {
		return fmt.Errorf("a <%s> row longer than %d bytes: %w", r.row, maxToken, errTokenTooLong)
	}
	if len(l.path) == 3 {
		r.rowTexts[l.path[2]] = l.text
	}
	r.rowOut = append(r.rowOut, *l)
	return nil
}

// emit writes raw bytes to the output, or to the open row.
func (r *rewriter) emit(raw []byte) error {
	switch {
	case r.skipping > 0, len(raw) == 0:
		return nil
	case r.inRow:
		if r.rowLen += len(raw); r.rowLen > maxToken {
			return fmt.Errorf("a <%s> row longer than %d bytes: %w", r.row, maxToken, errTokenTooLong)
		}
		r.rowOut = append(r.rowOut, piece{raw: raw})
		return nil
	}
	_, err := r.out.Write(raw)
	return err
}

// emitLeaf writes a leaf's text, translated.
func (r *rewriter) emitLeaf(l piece, row map[string]string) {
	v, ok := l.text, true
	if r.xmlRewrite.leaf != nil {
		v, ok = r.xmlRewrite.leaf(l.path, l.text, row)
	}
	if !ok {
		r.kept++
	}
	if v == l.text {
		r.out.Write(l.raw)
	} else {
		xml.EscapeText(r.out, []byte(v))
	}
}

// flushRow writes the row that just ended.
func (r *rewriter) flushRow() {
	for _, pc := range r.rowOut {
		if pc.path == nil {
			r.out.Write(pc.raw)
		} else {
			r.emitLeaf(pc, r.rowTexts)
		}
	}
	r.rowOut, r.rowLen, r.rowTexts = r.rowOut[:0], 0, nil
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
