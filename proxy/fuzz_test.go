package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/envelope"
	"github.com/s3seal/s3seal/internal/adversary"
)

// Both fuzz targets run for a bounded time in scripts/test; run longer with
//
//	go test -run XXX -fuzz FuzzStoreLies -fuzztime 10m ./proxy/
//	go test -run XXX -fuzz FuzzClientRequests -fuzztime 10m ./proxy/

// lieValues are the parameters a fuzzed lie takes: off by one, by a tag, by
// a header, by a chunk, huge, and statuses.
var lieValues = []int64{-1, 1, 2, 4, 16, -16, 17, -17, 48, -48, chunk + 16, -(chunk + 16), 100000, 1 << 40, 200, 404, 500}

// decodeLies turns fuzz input into up to four lies, four bytes each.
func decodeLies(spec []byte) []adversary.Lie {
	kinds := adversary.Kinds()
	keys := []string{"small", "other", "mp"}
	var lies []adversary.Lie
	for len(spec) >= 4 && len(lies) < 4 {
		b := spec[:4]
		spec = spec[4:]
		m := adversary.Match{
			Method:     []string{"", "GET", "HEAD"}[b[1]%3],
			PartNumber: int(b[1]>>2)%5 - 1,
			Ranged:     b[1]&0x40 != 0,
			Nth:        int(b[1]>>7) * (1 + int(b[2]>>6)),
		}
		if b[2]&0x20 != 0 {
			m.Key = keys[int(b[2])%3]
		}
		lies = append(lies, adversary.Lie{Match: m, Kind: kinds[int(b[0])%len(kinds)],
			N: lieValues[int(b[3])%len(lieValues)], Key: keys[int(b[3]>>5)%3]})
	}
	return lies
}

// FuzzStoreLies drives reads and copies through a store that lies in the
// ways the fuzzer picks. Properties: s3seal never completes an answer with
// bytes other than the object's, at the place asked; copies made meanwhile
// read back (honestly) as the source or not at all; nothing panics; memory
// stays bounded.
func FuzzStoreLies(f *testing.F) {
	f.Add([]byte{}, uint8(0), uint32(0), uint32(0))
	f.Add([]byte{byte(adversary.ContentLength - 1), 2 | 2<<2, 0x20 | 2, 7, byte(adversary.ContentLength - 1), 2 | 3<<2, 0x22, 6}, uint8(1), uint32(2*chunk-10), uint32(30))
	f.Add([]byte{byte(adversary.ETagParts - 1), 0, 0, 13}, uint8(2), uint32(2), uint32(0))
	f.Add([]byte{byte(adversary.OtherObject - 1), 0, 0x20, 0x20}, uint8(0), uint32(0), uint32(0))
	f.Add([]byte{byte(adversary.ContentRangeShift - 1), 1 | 3<<2, 0, 10}, uint8(2), uint32(2), uint32(1))
	f.Add([]byte{byte(adversary.IgnoreSubresources - 1), 0, 0, 0}, uint8(5), uint32(2), uint32(90000))
	// Every request fails, CreateMultipartUpload of a ranged copy too.
	f.Add([]byte{byte(adversary.Status - 1), 6, 0, 16}, uint8(5), uint32(0), uint32(0))
	e := newLyingEnv(f)
	n := 0
	f.Fuzz(func(t *testing.T, spec []byte, op uint8, a, b uint32) {
		n++
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e.proxy.layouts = newLayoutCache()
		e.proxy.counts = newPartCounts(false)
		key := []string{"small", "other", "mp"}[a%3]
		plain := e.plain(key)
		off := int64(a) % int64(len(plain))
		length := 1 + int64(b)%(int64(len(plain))-off)
		e.liar.Set(decodeLies(spec)...)
		defer e.liar.Set()
		path := "/" + testBucket + "/" + key
		switch op % 7 {
		case 0:
			checkHonest(t, e.read(t, "GET", path, nil), plain, 0, int64(len(plain)))
		case 1:
			checkHonest(t, e.read(t, "GET", path, rangeHeader(off, length)), plain, off, length)
		case 2:
			k := 1 + int(b)%3
			po, pn := partPlace(e.mpParts, k)
			if key != "mp" {
				po, pn = 0, int64(len(plain))
			}
			checkPart(t, e.read(t, "GET", fmt.Sprintf("%s?partNumber=%d", path, k), nil), plain, po, pn)
		case 3:
			e.read(t, "HEAD", path, rangeHeader(off, length))
		case 4:
			e.read(t, "GET", "/"+testBucket+"?list-type=2", nil)
		case 5, 6:
			dst := fmt.Sprintf("fuzz-copy-%d", n)
			var rng *[2]int64
			want := plain
			if op%7 == 5 {
				rng, want = &[2]int64{off, off + length - 1}, plain[off:off+length]
			}
			ok := e.copyUnderLies(t, key, dst, rng)
			e.liar.Set()
			if got := e.read(t, "GET", "/"+testBucket+"/"+dst, nil); ok {
				checkHonest(t, got, want, 0, int64(len(want)))
			}
		}
		if e.panics.Load() > 0 {
			t.Fatal("the proxy panicked")
		}
		runtime.ReadMemStats(&after)
		if grown := after.TotalAlloc - before.TotalAlloc; grown > 256<<20 {
			t.Fatalf("%d MiB allocated for one request", grown>>20)
		}
	})
}

func rangeHeader(off, n int64) http.Header {
	return http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}}
}

// partPlace is the plaintext offset and size of part k.
func partPlace(parts []int64, k int) (int64, int64) {
	return v1Layout(parts[:k-1]...).PlaintextSize(), parts[k-1]
}

// v1Layout is a FramingV1 layout of the given part sizes.
func v1Layout(parts ...int64) envelope.Layout {
	return envelope.Layout{Framing: envelope.FramingV1, Parts: parts}
}

// fuzzMarker is in every header value the fuzzed client sends: the store
// must never see it in a reserved or key-material header.
const fuzzMarker = "fz7q"

// FuzzClientRequests sends arbitrary, validly signed requests (any method,
// path, query, headers and body, the body protected in any of the payload
// modes and possibly altered after signing) to a proxy in front of a
// recording store. Properties: the store never completes a write whose body
// failed verification, and never receives a body byte of a document that
// failed; every object body it stores is ciphertext; it never sees a
// client's reserved metadata or key material; nothing panics.
func FuzzClientRequests(f *testing.F) {
	f.Add(uint8(1), "bkt/k", "", "", []byte("hello"), uint8(1), false)
	f.Add(uint8(1), "bkt/k", "tagging", "", []byte(taggingDoc), uint8(2), true)
	f.Add(uint8(1), "bkt/k", "", "X-Amz-Meta-S3seal-K: a", []byte("x"), uint8(0), false)
	f.Add(uint8(1), "bkt/k", "", "X-Amz-Server-Side-Encryption-Customer-Key: a", []byte("x"), uint8(3), false)
	f.Add(uint8(1), "bkt/k", "", "X-Amz-Copy-Source: bkt/src", []byte(""), uint8(1), true)
	f.Add(uint8(2), "bkt", "delete", "", []byte(`<Delete><Object><Key>src</Key></Object></Delete>`), uint8(3), true)
	f.Add(uint8(1), "bkt", "policy", "", []byte(`{"Statement":[]}`), uint8(1), true)
	f.Add(uint8(2), "bkt/k", "uploads", "Content-Type: text/plain", []byte(""), uint8(1), false)
	f.Add(uint8(1), "bkt/k", "retention", "", []byte("<Retention><Mode>GOVERNANCE</Mode></Retention>"), uint8(0), false)
	e := newEnv(f)
	e.put(f, "src", []byte("source object"), nil)
	f.Fuzz(func(t *testing.T, method uint8, path, query, headers string, body []byte, mode uint8, tamper bool) {
		m := []string{"GET", "PUT", "POST", "DELETE", "HEAD"}[method%5]
		h := fuzzHeaders(headers)
		target := "/" + sanitize(path, "abcdefghijklmnopqrstuvwxyz0123456789/._-") + fuzzQuery(query)
		if len(body) > 1<<20 {
			body = body[:1<<20]
		}
		before := len(e.store.recorded())
		status, _, _ := e.send(t, e.wireRequest(t, m, target, body, bodyMode(mode%4), tamper, h))
		writes, completed := e.store.writesSince(before)
		if tamper && completed {
			t.Fatalf("%s %s: a tampered body made the store complete a write (answer %d)", m, target, status)
		}
		for _, w := range writes {
			checkStoreWrite(t, w, body, tamper)
		}
		for _, r := range e.store.recorded()[before:] {
			checkStoreHeaders(t, r)
		}
		if e.panics.Load() > 0 {
			t.Fatal("the proxy panicked")
		}
	})
}

// checkStoreWrite checks one write the store received during a fuzzed
// request: an object body must be ciphertext, a document only what the
// client sent and s3seal verified.
func checkStoreWrite(t *testing.T, w recorded, body []byte, tamper bool) {
	q, _ := url.ParseQuery(w.Query)
	objectWrite := strings.Count(strings.TrimPrefix(w.Path, "/"), "/") >= 1 && w.Method == http.MethodPut &&
		w.Header.Get("X-Amz-Copy-Source") == "" && (len(q) == 0 || (q.Has("uploadId") && q.Has("partNumber")))
	switch {
	case objectWrite && len(w.Body) > 0:
		if w.Body[0] != envelope.FormatVersion || !bytes.Equal(w.Body[1:4], []byte{0, 0, 0}) {
			t.Fatalf("%s %s?%s: the store got a body that is not s3seal ciphertext", w.Method, w.Path, w.Query)
		}
		if len(body) >= 16 && bytes.Contains(w.Body, body[:16]) {
			t.Fatalf("%s %s?%s: plaintext reached the store", w.Method, w.Path, w.Query)
		}
		if len(q) == 0 && w.Header.Get("X-Amz-Meta-S3seal-K") == "" {
			t.Fatalf("%s %s: an object stored without s3seal metadata", w.Method, w.Path)
		}
	case !objectWrite && w.BodyLen > 0 && tamper:
		t.Fatalf("%s %s?%s: a tampered document reached the store", w.Method, w.Path, w.Query)
	}
}

// checkStoreHeaders: no client key material, no client-set reserved
// metadata, ever reaches the store.
func checkStoreHeaders(t *testing.T, r recorded) {
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		for _, v := range vs {
			switch {
			case strings.HasPrefix(lk, sseCustomerPrefix), strings.HasPrefix(lk, copySSECustomerPrefix):
				t.Fatalf("%s %s: the store got %s", r.Method, r.Path, k)
			case envelope.IsReserved(lk) && strings.Contains(v, fuzzMarker):
				t.Fatalf("%s %s: the store got the client's %s", r.Method, r.Path, k)
			}
		}
	}
}

// fuzzHeaders parses "Name: value" lines into headers a client may send;
// every value carries fuzzMarker.
func fuzzHeaders(s string) http.Header {
	h := http.Header{}
	for i, line := range strings.Split(s, "\n") {
		name, value, ok := strings.Cut(line, ":")
		name = sanitize(strings.TrimSpace(name), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
		if !ok || name == "" || i >= 8 || reservedForTransport[strings.ToLower(name)] {
			continue
		}
		v := sanitize(strings.TrimSpace(value), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 /=+-_.,;*\"")
		if !strings.EqualFold(name, "X-Amz-Copy-Source") && !strings.EqualFold(name, "Content-Type") {
			v += fuzzMarker
		}
		h.Add(name, v)
	}
	return h
}

// Headers the test client's transport and signer own.
var reservedForTransport = map[string]bool{
	"host": true, "content-length": true, "transfer-encoding": true, "connection": true, "expect": true,
	"authorization": true, "x-amz-date": true, "x-amz-content-sha256": true, "te": true, "trailer": true,
	"upgrade": true, "keep-alive": true, "proxy-connection": true, "content-encoding": true,
	"x-amz-decoded-content-length": true, "x-amz-trailer": true, "content-md5": true,
}

func fuzzQuery(s string) string {
	s = sanitize(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=&-_.")
	if s == "" {
		return ""
	}
	q, err := url.ParseQuery(s)
	if err != nil || len(q) > 8 {
		return ""
	}
	return "?" + q.Encode()
}

// sanitize keeps the bytes of s that are in allowed, up to 200 of them.
func sanitize(s, allowed string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 200; i++ {
		if strings.IndexByte(allowed, s[i]) >= 0 {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
