package e2e

// What a store is left with when a write does not finish, what calls that
// are not object writes do to an object, and what s3seal answers when a
// store stops telling part counts: on every upstream.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/internal/adversary"
	"github.com/s3seal/s3seal/internal/metricstest"
)

// metricSum is the sum of family's samples on s3seal's /metrics whose
// labels match labels ("operation=Decrypt", ...).
func metricSum(t *testing.T, in *instance, family string, labels ...string) float64 {
	t.Helper()
	scrape, err := metricstest.Get(in.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return scrape.Sum(family, labels...)
}

// awaitUnderWay waits up to 10 s until s3seal answers n requests, then
// lets the body flow to the store for half a second. (s3seal's envelope
// metrics count a body only once it is done; the body streams to the store
// as it arrives.)
func awaitUnderWay(t *testing.T, in *instance, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metricSum(t, in, "s3seal_inflight_requests") < n {
		if time.Now().After(deadline) {
			t.Fatalf("s3seal does not answer %v requests after 10 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
}

// awaitIdle waits up to 15 s until s3seal answers no request.
func awaitIdle(t *testing.T, in *instance) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for metricSum(t, in, "s3seal_inflight_requests") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("s3seal still answers a request 15 s after its client left")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openPut connects to s3seal and sends the head of a PUT of bucket/key,
// signed with its client credential, that declares size body bytes with
// the given x-amz-content-sha256 (a hex SHA-256 of the body, or
// UNSIGNED-PAYLOAD). The caller writes the body, or part of it.
func openPut(t *testing.T, in *instance, bucket, key string, size int64, payloadHash string) net.Conn {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, in.URL+"/"+bucket+"/"+key, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	creds := aws.Credentials{AccessKeyID: in.AccessKey, SecretAccessKey: in.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, payloadHash, "s3", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", req.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.EscapedPath(), req.URL.Host, size)
	req.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// storedState is what the store holds for an object.
type storedState struct {
	etag string
	sum  [32]byte
	size int
}

func storedStateOf(t *testing.T, e testEnv, bucket, key string) storedState {
	t.Helper()
	b := storedBytes(t, e, bucket, key)
	return storedState{etag: mustStat(t, store(t, e), bucket, key).ETag, sum: sha256.Sum256(b), size: len(b)}
}

// checkIntact checks that bucket holds exactly the objects of want, each
// reading back byte for byte through s3seal, each stored exactly as before
// (same ETag, same bytes), and that the bucket lists through s3seal (with
// the plaintext sizes) and in the store (nothing else, no upload left).
func checkIntact(t *testing.T, e testEnv, c *s3.Client, bucket string, want map[string][]byte, before map[string]storedState) {
	t.Helper()
	ctx := context.Background()
	for key, plain := range want {
		if got, err := readThrough(c, bucket, key); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s through s3seal: %d bytes (want %d), equal %v, err %v", key, len(got), len(plain), bytes.Equal(got, plain), err)
		}
		if now := storedStateOf(t, e, bucket, key); now != before[key] {
			t.Errorf("%s changed in the store: ETag %s, %d bytes; was ETag %s, %d bytes", key, now.etag, now.size, before[key].etag, before[key].size)
		}
	}
	listed := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing %s through s3seal: %v", bucket, err)
		}
		for _, o := range page.Contents {
			listed[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	wantSizes := map[string]int64{}
	for key, plain := range want {
		wantSizes[key] = int64(len(plain))
	}
	if fmt.Sprint(listed) != fmt.Sprint(wantSizes) {
		t.Errorf("s3seal lists %v, want %v", listed, wantSizes)
	}
	var inStore []string
	for o := range store(t, e).ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("listing %s in the store: %v", bucket, o.Err)
		}
		inStore = append(inStore, o.Key)
	}
	var keys []string
	for key := range want {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	sort.Strings(inStore)
	if fmt.Sprint(inStore) != fmt.Sprint(keys) {
		t.Errorf("the store lists %v, want %v", inStore, keys)
	}
	uploads, err := minio.Core{Client: store(t, e)}.ListMultipartUploads(ctx, bucket, "", "", "", "", 1000)
	if err != nil {
		t.Fatalf("ListMultipartUploads in the store: %v", err)
	}
	if len(uploads.Uploads) > 0 {
		t.Errorf("the store has %d uploads in progress", len(uploads.Uploads))
	}
}

// blockingReader yields b, then waits until release is closed and fails:
// a client whose source breaks mid-body.
type blockingReader struct {
	b       []byte
	release chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.b) > 0 {
		n := copy(p, r.b)
		r.b = r.b[n:]
		return n, nil
	}
	<-r.release
	return 0, errors.New("the client's source broke")
}

// TestInterruptedPut: a client that stops half way through a PUT's body
// and closes the connection leaves the object that was there byte for byte
// as it was, creates no object where there was none, and the bucket lists,
// through s3seal and in the store — in every payload mode.
func TestInterruptedPut(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		prev := plaintext(1<<20+5, 40)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), Body: bytes.NewReader(prev)}); err != nil {
			t.Fatal(err)
		}
		before := map[string]storedState{"obj": storedStateOf(t, e, bucket, "obj")}
		next := plaintext(3<<20+7, 41)
		sum := sha256.Sum256(next)
		half := len(next) / 2

		// raw sends half of next under the given payload hash, waits until
		// s3seal is streaming it to the store, and hangs up.
		raw := func(hash string) func(t *testing.T, key string) {
			return func(t *testing.T, key string) {
				conn := openPut(t, in, bucket, key, int64(len(next)), hash)
				defer conn.Close()
				if _, err := conn.Write(next[:half]); err != nil {
					t.Fatal(err)
				}
				awaitUnderWay(t, in, 1)
			}
		}
		for _, tc := range []struct {
			name      string
			interrupt func(t *testing.T, key string)
		}{
			{"signed payload", raw(hex.EncodeToString(sum[:]))},
			{"unsigned payload", raw("UNSIGNED-PAYLOAD")},
			{"chunk-signed (minio-go)", func(t *testing.T, key string) {
				u, _ := url.Parse(in.URL)
				mc, err := minio.New(u.Host, &minio.Options{Creds: miniocreds.NewStaticV4(in.AccessKey, in.SecretKey, ""), Region: region, MaxRetries: 1})
				if err != nil {
					t.Fatal(err)
				}
				body := &blockingReader{b: next[:half], release: make(chan struct{})}
				var once sync.Once
				release := func() { once.Do(func() { close(body.release) }) }
				defer release()
				done := make(chan error, 1)
				go func() {
					_, err := mc.PutObject(ctx, bucket, key, body, int64(len(next)), minio.PutObjectOptions{DisableMultipart: true})
					done <- err
				}()
				awaitUnderWay(t, in, 1)
				release()
				if err := <-done; err == nil {
					t.Fatal("minio-go's PUT with a broken source succeeded")
				}
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, key := range []string{"obj", "fresh"} {
					tc.interrupt(t, key)
					awaitIdle(t, in)
				}
				checkIntact(t, e, c, bucket, map[string][]byte{"obj": prev}, before)
			})
		}
	})
}

// TestPutCutByShutdown: SIGTERM while a slow client streams a PUT; the
// drain time (S3SEAL_DRAIN_TIMEOUT) runs out, s3seal cuts the request and
// exits. The object that was there is intact byte for byte, nothing else
// appears, and the bucket lists, after s3seal starts again (on the embedded
// store: the store that s3seal stopped with it, from its files).
func TestPutCutByShutdown(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		const drain = 2 * time.Second
		in := startS3seal(t, e, e.kmsURL, "", "S3SEAL_DRAIN_TIMEOUT="+drain.String())
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		prev := plaintext(1<<20+5, 50)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("obj"), Body: bytes.NewReader(prev)}); err != nil {
			t.Fatal(err)
		}
		before := map[string]storedState{"obj": storedStateOf(t, e, bucket, "obj")}

		// 64 MiB declared, sent at about 3 MiB/s after the first MiB.
		const size = 64 << 20
		conn := openPut(t, in, bucket, "obj", size, "UNSIGNED-PAYLOAD")
		defer conn.Close()
		sent := make(chan error, 1)
		go func() {
			chunk := plaintext(64<<10, 51)
			for n := 0; n < size; n += len(chunk) {
				if _, err := conn.Write(chunk); err != nil {
					sent <- err
					return
				}
				if n >= 1<<20 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			sent <- nil
		}()
		awaitUnderWay(t, in, 1)

		start := time.Now()
		in.stopWith(t, syscall.SIGTERM)
		took := time.Since(start)
		t.Logf("s3seal exited %v after SIGTERM (drain timeout %v)", took.Round(time.Millisecond), drain)
		if took < drain {
			t.Errorf("s3seal exited %v after SIGTERM, before its drain time of %v", took, drain)
		}
		if !strings.Contains(in.logs.String(), "drain timed out") {
			t.Errorf("s3seal's log does not say the drain timed out")
		}
		select {
		case err := <-sent:
			if err == nil {
				t.Fatal("the whole body was sent: the PUT was not cut")
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the slow client was not cut off 15 s after s3seal exited")
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			t.Errorf("the cut PUT was answered %s", resp.Status)
		}

		in.launch(t)
		checkIntact(t, e, c, bucket, map[string][]byte{"obj": prev}, before)
	})
}

// cliErrorCode is the S3 error code in an AWS CLI error message, "" if none.
func cliErrorCode(out string) string {
	m := regexp.MustCompile(`An error occurred \(([^)]+)\)`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// TestTaggingAndACLKeepBody: object tagging and ACL calls through s3seal
// (the AWS CLI's put/get/delete-object-tagging, put-object-acl --acl
// private, get-object-acl) never change an object's body: after each, the
// object reads back byte for byte and the store holds the same bytes under
// the same ETag. A call the store itself refuses (versitygw and the
// embedded store have no object ACLs) must be refused through s3seal with
// the store's own error.
func TestTaggingAndACLKeepBody(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c, direct := sdkClient(t, in), storeSDK(t, e)
		ctx := context.Background()
		bucket := newBucket(t, e)
		objects := map[string][]byte{"single": plaintext(300001, 60), "multi part": plaintext(10*mib+3, 61)}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("single"), Body: bytes.NewReader(objects["single"])}); err != nil {
			t.Fatal(err)
		}
		if err := multipartUpload(t, c, bucket, "multi part", splitParts(objects["multi part"], 5*mib), nil); err != nil {
			t.Fatal(err)
		}
		before := map[string]storedState{}
		for key := range objects {
			before[key] = storedStateOf(t, e, bucket, key)
		}
		env := clientEnv(in)
		for key := range objects {
			k := aws.String(key)
			tagging := &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}}}
			for _, step := range []struct {
				args   []string
				want   []string // in the output
				direct func() error
			}{
				{[]string{"put-object-tagging", "--tagging", "TagSet=[{Key=team,Value=a}]"}, nil, func() error {
					_, err := direct.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &bucket, Key: k, Tagging: tagging})
					return err
				}},
				{[]string{"get-object-tagging"}, []string{`"Key": "team"`, `"Value": "a"`}, func() error {
					_, err := direct.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: k})
					return err
				}},
				{[]string{"delete-object-tagging"}, nil, func() error {
					_, err := direct.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: &bucket, Key: k})
					return err
				}},
				{[]string{"get-object-tagging"}, []string{`"TagSet": []`}, func() error {
					_, err := direct.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: k})
					return err
				}},
				{[]string{"put-object-acl", "--acl", "private"}, nil, func() error {
					_, err := direct.PutObjectAcl(ctx, &s3.PutObjectAclInput{Bucket: &bucket, Key: k, ACL: types.ObjectCannedACLPrivate})
					return err
				}},
				{[]string{"get-object-acl"}, []string{`"Grants"`}, func() error {
					_, err := direct.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: &bucket, Key: k})
					return err
				}},
			} {
				args := append([]string{"--endpoint-url", in.URL, "s3api", step.args[0], "--bucket", bucket, "--key", key}, step.args[1:]...)
				out, err := runResult(env, "/usr/bin/aws", args...)
				name := key + ": " + strings.Join(step.args, " ")
				switch {
				case err != nil:
					// Refused through s3seal: only as the store itself refuses it.
					derr := step.direct()
					code, _ := apiCode(derr)
					if derr == nil || code != cliErrorCode(out) {
						t.Errorf("%s: %v through s3seal (%s), the store directly says %v", name, err, strings.TrimSpace(out), derr)
					} else {
						t.Logf("%s: the store refuses it (%s), and so does s3seal", name, code)
					}
				default:
					for _, w := range step.want {
						if !strings.Contains(out, w) {
							t.Errorf("%s: no %s in\n%s", name, w, out)
						}
					}
				}
				got, err := readThrough(c, bucket, key)
				if err != nil || !bytes.Equal(got, objects[key]) {
					t.Fatalf("after %s: the object reads %d bytes (want %d), equal %v, err %v", name, len(got), len(objects[key]), bytes.Equal(got, objects[key]), err)
				}
				if now := storedStateOf(t, e, bucket, key); now != before[key] {
					t.Fatalf("after %s: the store holds ETag %s, %d bytes; was ETag %s, %d bytes", name, now.etag, now.size, before[key].etag, before[key].size)
				}
			}
		}
		checkIntact(t, e, c, bucket, objects, before)
	})
}

// runResult runs a client and returns its combined output and error.
func runResult(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestRemoveRecursiveThenRemoveBucket: `aws s3 rm --recursive` empties a
// bucket (nested keys, an empty object, a multipart one) and `aws s3 rb`
// then removes it: the store has no such bucket any more.
func TestRemoveRecursiveThenRemoveBucket(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		env := clientEnv(in)
		aws := func(args ...string) string {
			return run(t, env, "/usr/bin/aws", append([]string{"--endpoint-url", in.URL}, args...)...)
		}
		bucket := "rb-" + randHex(4)
		if out := aws("s3", "mb", "s3://"+bucket); strings.TrimSpace(out) != "make_bucket: "+bucket {
			t.Fatalf("aws s3 mb: %s", out)
		}
		dir := t.TempDir()
		files := writeTree(t, dir, treeSizes)
		aws("s3", "sync", "--no-progress", dir, "s3://"+bucket+"/")
		aws("s3", "cp", "--no-progress", writeFile(t, t.TempDir(), "top.txt", []byte("top")), "s3://"+bucket+"/a/b/c/top.txt")
		if ls := aws("s3", "ls", "--recursive", "s3://"+bucket); strings.Count(ls, "\n") != len(files)+1 {
			t.Fatalf("aws s3 ls --recursive, want %d objects:\n%s", len(files)+1, ls)
		}
		out := aws("s3", "rm", "--recursive", "s3://"+bucket)
		if n := strings.Count(out, "delete: s3://"+bucket+"/"); n != len(files)+1 {
			t.Fatalf("aws s3 rm --recursive deleted %d objects, want %d:\n%s", n, len(files)+1, out)
		}
		if out := aws("s3", "rb", "s3://"+bucket); strings.TrimSpace(out) != "remove_bucket: "+bucket {
			t.Fatalf("aws s3 rb: %s", out)
		}
		exists, err := store(t, e).BucketExists(context.Background(), bucket)
		if err != nil || exists {
			t.Fatalf("after aws s3 rb the store still has the bucket (exists %v, err %v)", exists, err)
		}
		if ls := aws("s3", "ls"); strings.Contains(ls, bucket) {
			t.Fatalf("aws s3 ls still lists %s:\n%s", bucket, ls)
		}
	})
}

// TestStoreDropsPartCount: a store whose ETags lose their "-N" (an
// adversary.Store in front of the real one) in front of a fresh s3seal
// process, which has learnt nothing about the store. Whole, ranged and
// part GETs, HEADs and listings are exact or refused with 502, never a
// wrong size or wrong bytes. The stores here answer part counts when asked
// (HEAD ?partNumber=1 carries x-amz-mp-parts-count), so s3seal must
// answer exactly; once the store also ignores ?partNumber, every read is
// refused (502 UnknownPartCount) and listings keep the stored sizes.
func TestStoreDropsPartCount(t *testing.T) {
	forEachUpstream(t, func(t *testing.T, e testEnv) {
		in := startS3seal(t, e, e.kmsURL, "")
		c := sdkClient(t, in)
		ctx := context.Background()
		bucket := newBucket(t, e)
		objects := map[string][]byte{
			"three parts": mpObject(t, in, bucket, "three parts"), // 6 MiB, 5 MiB, 100 bytes
			"one part":    plaintext(200003, 71),
			"single":      plaintext(300007, 72),
		}
		if err := multipartUpload(t, c, bucket, "one part", [][]byte{objects["one part"]}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("single"), Body: bytes.NewReader(objects["single"])}); err != nil {
			t.Fatal(err)
		}
		storedSize := map[string]int64{}
		for key := range objects {
			storedSize[key] = mustStat(t, store(t, e), bucket, key).Size
		}
		// The store answers part counts when asked.
		counted, err := storeSDK(t, e).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("three parts"), PartNumber: aws.Int32(1)})
		if err != nil || aws.ToInt32(counted.PartsCount) != 3 {
			t.Fatalf("the store does not answer HEAD ?partNumber=1 with its part count (%v, err %v)", counted.PartsCount, err)
		}

		liar, lying := lyingStore(t, e)
		type outcome struct{ exact, refused int }
		// reads tries every read of every object through a fresh s3seal in
		// front of the liar; each answer must be exact or a 502 with
		// refusedCode ("" any).
		reads := func(t *testing.T, refusedCode string) outcome {
			t.Helper()
			var o outcome
			reader := startS3seal(t, lying, e.kmsURL, in.KeyAlias)
			rc := sdkClient(t, reader)
			check := func(what string, got, want []byte, err error) {
				t.Helper()
				switch code, status := apiCode(err); {
				case err == nil && bytes.Equal(got, want):
					o.exact++
				case err == nil:
					t.Errorf("%s: %d bytes, want %d: wrong bytes", what, len(got), len(want))
				case status == http.StatusBadGateway && (refusedCode == "" || code == refusedCode):
					o.refused++
				default:
					t.Errorf("%s: %v (%s %d), want the bytes or 502 %s", what, err, code, status, refusedCode)
				}
			}
			for key, plain := range objects {
				n := len(plain)
				got, err := readThrough(rc, bucket, key)
				check(key+": GET", got, plain, err)
				for _, r := range [][2]int{{0, 0}, {65530, 70000}, {n - 7, n - 1}, {6<<20 - 10, 6<<20 + 10}, {11<<20 - 3, 11<<20 + 50}} {
					if r[1] >= n {
						continue
					}
					got, err := readRange(rc, bucket, key, r[0], r[1])
					check(fmt.Sprintf("%s: range %d-%d", key, r[0], r[1]), got, plain[r[0]:r[1]+1], err)
				}
				got, err = readPart(rc, bucket, key, 1)
				want := plain
				if key == "three parts" {
					want = plain[:6<<20]
				}
				check(key+": partNumber=1", got, want, err)
				head, err := rc.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
				var size []byte
				if err == nil {
					size = []byte(strconv.FormatInt(aws.ToInt64(head.ContentLength), 10))
				}
				// A refused HEAD has no body to name the error in.
				code := refusedCode
				refusedCode = ""
				check(key+": HEAD size", size, []byte(strconv.Itoa(n)), err)
				refusedCode = code
			}
			for _, list := range []struct {
				name string
				do   func() (map[string]int64, error)
			}{
				{"ListObjectsV2", func() (map[string]int64, error) {
					out, err := rc.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
					if err != nil {
						return nil, err
					}
					m := map[string]int64{}
					for _, o := range out.Contents {
						m[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
					}
					return m, nil
				}},
				{"ListObjectVersions", func() (map[string]int64, error) {
					out, err := rc.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
					if err != nil {
						return nil, err
					}
					m := map[string]int64{}
					for _, v := range out.Versions {
						m[aws.ToString(v.Key)] = aws.ToInt64(v.Size)
					}
					return m, nil
				}},
			} {
				sizes, err := list.do()
				if err != nil {
					t.Errorf("%s: %v", list.name, err)
					continue
				}
				for key, plain := range objects {
					switch got := sizes[key]; {
					case got == int64(len(plain)):
						o.exact++
					case refusedCode != "" && got == storedSize[key]:
						o.refused++ // a row whose size is unknown keeps the stored size
					default:
						t.Errorf("%s lists %s at %d bytes: want %d (or the stored %d, if refused)", list.name, key, got, len(plain), storedSize[key])
					}
				}
			}
			return o
		}

		t.Run("ETags without -N", func(t *testing.T) {
			liar.Set(adversary.Lie{Kind: adversary.ETagParts, N: -1})
			o := reads(t, "")
			t.Logf("%d exact answers, %d refusals", o.exact, o.refused)
			if o.refused > 0 {
				t.Errorf("%d reads refused although the store answers part counts when asked", o.refused)
			}
		})
		t.Run("ETags without -N, partNumber ignored", func(t *testing.T) {
			liar.Set(adversary.Lie{Kind: adversary.ETagParts, N: -1}, adversary.Lie{Kind: adversary.IgnorePartNumber})
			o := reads(t, "UnknownPartCount")
			t.Logf("%d exact answers, %d refusals", o.exact, o.refused)
			if o.exact > 0 {
				t.Errorf("%d answers given although the store tells no part count", o.exact)
			}
		})
	})
}
