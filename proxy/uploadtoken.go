package proxy

import (
	"net/http"

	"github.com/s3seal/s3seal/envelope"
)

// The client's UploadId is an upload token (envelope.UploadToken,
// docs/FORMAT.md §11.2): s3seal keeps no state between the requests of an
// upload.

func errNoSuchUpload(cause error) *s3Error {
	return newS3Error("NoSuchUpload", http.StatusNotFound,
		"The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", cause)
}

// uploadTokenParam decodes the client's uploadId parameter.
func uploadTokenParam(t target) (envelope.UploadToken, string, error) {
	s := t.query.Get("uploadId")
	tok, err := envelope.ParseUploadToken(s)
	if err != nil {
		return tok, s, errNoSuchUpload(err)
	}
	return tok, s, nil
}
