package envelope_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log"

	"github.com/s3seal/s3seal/envelope"
)

// An object's round trip: encrypted as it streams to the store, decrypted
// and authenticated as it streams back. The data key comes from a key
// service (envelope/kms) in s3seal; here it is random.
func Example() {
	dataKey := make([]byte, envelope.DataKeySize)
	rand.Read(dataKey)
	plaintext := []byte("hello, s3seal")

	enc, err := envelope.NewEncryptReader(bytes.NewReader(plaintext), dataKey, 1, int64(len(plaintext)))
	if err != nil {
		log.Fatal(err)
	}
	stored, err := io.ReadAll(enc)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(stored), envelope.SegmentSize(int64(len(plaintext))))

	got, err := io.ReadAll(envelope.NewDecryptReader(bytes.NewReader(stored), dataKey, envelope.FramingV1, 1))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got)

	stored[40] ^= 1 // a flipped bit anywhere fails authentication
	_, err = io.ReadAll(envelope.NewDecryptReader(bytes.NewReader(stored), dataKey, envelope.FramingV1, 1))
	fmt.Println(err != nil)
	// Output:
	// 61 61
	// hello, s3seal
	// true
}

// A ranged read fetches only the stored chunks that hold the range (here the
// third of four), and the header of the segment they are in.
func ExampleOpenRange() {
	dataKey := make([]byte, envelope.DataKeySize)
	rand.Read(dataKey)
	plaintext := bytes.Repeat([]byte("0123456789"), 20000) // 200,000 bytes: 4 chunks
	enc, _ := envelope.NewEncryptReader(bytes.NewReader(plaintext), dataKey, 1, int64(len(plaintext)))
	stored, _ := io.ReadAll(enc)

	fetch := func(off, n int64) (io.ReadCloser, error) {
		fmt.Printf("fetch %d bytes at %d\n", n, off)
		return io.NopCloser(bytes.NewReader(stored[off : off+n])), nil
	}
	layout := envelope.Single(envelope.FramingV1, int64(len(plaintext)))
	r, err := envelope.OpenRange(fetch, dataKey, layout, 150000, 10, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	got, _ := io.ReadAll(r)
	fmt.Printf("%s\n", got)
	// Output:
	// fetch 32 bytes at 0
	// fetch 65552 bytes at 131136
	// 0123456789
}
