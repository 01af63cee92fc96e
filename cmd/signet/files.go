package main

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/signet-micro/signet/signing"
)

// maxInputSize bounds what signet reads from a key, token or bundle file.
// The largest of them, a trust bundle of many RSA keys, stays far below it.
const maxInputSize = 1 << 20

// existsError reports an output file that already exists. It wraps
// fs.ErrExist.
type existsError struct{ path string }

func (e *existsError) Error() string { return e.path + " already exists" }

func (e *existsError) Unwrap() error { return fs.ErrExist }

// writeNewFile creates path with mode perm and writes data to it. It
// fails with an *existsError when path exists, a symbolic link included,
// so an existing file is never overwritten. A partly written file is
// removed.
func writeNewFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, fs.ErrExist) {
		return &existsError{path: path}
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return finishFile(f, path, data)
}

// replaceFile writes data to a new file with mode perm in the directory of
// path and renames it to path. A process that reloads path, such as a node
// reading its token file, therefore reads the old or the new content,
// never a partial one.
func replaceFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating a temporary file next to %s: %w", path, err)
	}
	tmp := f.Name()
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("setting mode %v on %s: %w", perm, tmp, err)
	}
	if err := finishFile(f, tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

// finishFile writes data to f, syncs and closes it, and removes the file
// at path when any step fails.
func finishFile(f *os.File, path string, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// writeOutput writes data to path with mode perm, or to stdout when path
// is empty. An existing file is replaced only when force is set.
func (c *command) writeOutput(path string, data []byte, perm fs.FileMode, force bool) error {
	switch {
	case path == "":
		_, err := c.stdout.Write(data)
		return err
	case force:
		return replaceFile(path, data, perm)
	default:
		err := writeNewFile(path, data, perm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w; give -force to replace it", err)
		}
		return err
	}
}

// readInput reads the file at path, or stdin when path is "-", up to
// maxInputSize bytes.
func (c *command) readInput(path string) ([]byte, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = c.stdin, "standard input"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}

	data, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > maxInputSize {
		return nil, fmt.Errorf("%s is larger than %d bytes; expected a key, token or trust bundle", name, maxInputSize)
	}
	return data, nil
}

// readPrivateKey reads an Ed25519 private key from a PEM PKCS#8 file.
func (c *command) readPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := c.readInput(path)
	if err != nil {
		return nil, err
	}
	key, err := signing.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// readPublicKey reads an Ed25519 public key from a PEM "PUBLIC KEY" file,
// as `signet keygen -pub` and `openssl pkey -pubout` write it.
func (c *command) readPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := c.readInput(path)
	if err != nil {
		return nil, err
	}

	block, _ := pem.Decode(data)
	switch {
	case block == nil:
		return nil, fmt.Errorf("%s has no PEM block; expected a \"PUBLIC KEY\" block as `signet keygen -pub` writes", path)
	case block.Type == "PRIVATE KEY" || block.Type == "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%s is a private key; give the public key file, or pass the private key with -node-key", path)
	case block.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("%s contains a PEM %q block; expected \"PUBLIC KEY\"", path, block.Type)
	}

	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: the PUBLIC KEY block is not a valid PKIX public key: %v", path, err)
	}
	key, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s contains a %T public key; node keys are Ed25519 (signet keygen)", path, pub)
	}
	return key, nil
}
