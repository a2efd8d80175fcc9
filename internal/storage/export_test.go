package storage

import "net/http"

// S3PartSize is the part size of an s3 store's uploads.
const S3PartSize = s3PartSize

// OpenS3ForTest opens an s3 volume whose HTTP transport wrap wraps (to
// inject failures), and whose broken reads resume at once, without a
// back-off: tests do not sleep.
func OpenS3ForTest(v Volume, wrap func(http.RoundTripper) http.RoundTripper) (Store, error) {
	cfg := defaultS3Config()
	cfg.wrapTransport = wrap
	cfg.backoff = 0
	return openS3(v, cfg)
}
