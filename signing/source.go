package signing

import (
	"crypto/ed25519"
	"fmt"
	"strings"
	"sync"
	"time"

	"go-micro.dev/v4/logger"

	"github.com/signet-micro/signet/internal/filesource"
)

// FileCredentials is a [CredentialSource] that reads the node key and the
// identity token from two files and reloads them when they change, so a
// renewed token is used at the next registration without a restart. When
// a reloaded pair does not fit together (a new token for a key not yet
// replaced, say), the last good pair stays in use and the problem is logged.
type FileCredentials struct {
	key   *filesource.Source[ed25519.PrivateKey]
	token *filesource.Source[string]
	log   logger.Logger

	mu     sync.Mutex
	last   *Credentials
	failed string
}

// NewFileCredentials opens the key and token files. It fails when either
// cannot be read or parsed or when they do not belong together.
func NewFileCredentials(keyPath, tokenPath string, log logger.Logger) (*FileCredentials, error) {
	if log == nil {
		log = logger.DefaultLogger
	}
	key, err := filesource.Open(keyPath, "signing key", ParsePrivateKeyPEM, log)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	token, err := filesource.Open(tokenPath, "identity token", parseTokenFile, log)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}

	c := &FileCredentials{key: key, token: token, log: log}
	if c.last, err = NewCredentials(key.Get(), token.Get()); err != nil {
		return nil, fmt.Errorf("%w (key %s, token %s)", err, keyPath, tokenPath)
	}
	return c, nil
}

// Credentials returns the current credentials.
func (c *FileCredentials) Credentials() (*Credentials, error) {
	key, token := c.key.Get(), c.token.Get()

	c.mu.Lock()
	defer c.mu.Unlock()

	if c.last.Token == token && c.last.Key.Equal(key) {
		return c.last, nil
	}
	next, err := NewCredentials(key, token)
	if err != nil {
		if msg := err.Error(); msg != c.failed {
			c.failed = msg
			c.log.Fields(map[string]any{"key_file": c.key.Path(), "token_file": c.token.Path(), "error": msg}).
				Log(logger.ErrorLevel, "signet: the reloaded signing key and identity token do not fit together; keeping the last good pair")
		}
		return c.last, nil
	}
	c.last, c.failed = next, ""
	return next, nil
}

// SetInterval changes how often the files are checked; tests shorten it.
func (c *FileCredentials) SetInterval(d time.Duration) {
	c.key.SetInterval(d)
	c.token.SetInterval(d)
}

// parseTokenFile accepts a token file with surrounding white space, as
// editors and `echo` write it.
func parseTokenFile(data []byte) (string, error) {
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("the file is empty; expected a JWT")
	}
	if strings.Count(token, ".") != 2 || strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("the file does not hold one JWT (three dot-separated parts)")
	}
	return token, nil
}
