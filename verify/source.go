package verify

import (
	"bytes"
	"errors"
	"time"

	"go-micro.dev/v4/logger"

	"github.com/signet-micro/signet/internal/filesource"
)

// FileBundle is a [BundleSource] that reads a trust bundle file and
// reloads it when it changes. A file that disappears or stops parsing
// leaves the last good bundle in use and logs an error naming the file.
type FileBundle struct {
	src *filesource.Source[*Bundle]
}

// NewFileBundle opens a trust bundle file, a JWK Set or PEM public keys.
func NewFileBundle(path string, log logger.Logger) (*FileBundle, error) {
	src, err := filesource.Open(path, "trust bundle", ParseBundle, log)
	if err != nil {
		return nil, err
	}
	return &FileBundle{src: src}, nil
}

// Bundle returns the current bundle.
func (f *FileBundle) Bundle() (*Bundle, error) { return f.src.Get(), nil }

// SetInterval changes how often the file is checked; tests shorten it.
func (f *FileBundle) SetInterval(d time.Duration) { f.src.SetInterval(d) }

// FileRevocations is a [RevocationSource] that reads a revocation list
// file and reloads it when it changes, keeping the last good list when the
// file becomes unreadable.
type FileRevocations struct {
	src *filesource.Source[*Revocations]
}

// NewFileRevocations opens a revocation list file. A file that becomes
// empty (no bytes but white space) while the list in use has entries is
// taken for a rewrite caught halfway, not for the lifting of every
// revocation: the last list stays in use and an error is logged. To lift
// them all, leave a comment line in the file.
func NewFileRevocations(path string, log logger.Logger) (*FileRevocations, error) {
	f := &FileRevocations{}
	parse := func(data []byte) (*Revocations, error) {
		if f.src != nil && len(bytes.TrimSpace(data)) == 0 && f.src.Current().Len() > 0 {
			return nil, errors.New("the file is empty, and the list in use has entries; to lift every revocation, leave a comment line such as \"# no revocations\"")
		}
		return ParseRevocations(data)
	}

	src, err := filesource.Open(path, "revocation list", parse, log)
	if err != nil {
		return nil, err
	}
	f.src = src
	return f, nil
}

// Revocations returns the current list.
func (f *FileRevocations) Revocations() (*Revocations, error) { return f.src.Get(), nil }

// SetInterval changes how often the file is checked; tests shorten it.
func (f *FileRevocations) SetInterval(d time.Duration) { f.src.SetInterval(d) }
