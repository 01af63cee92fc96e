package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/signing"
)

const keygenSynopsis = `    signet keygen -o FILE [-pub FILE]

Generates an Ed25519 key pair, for an issuer or for a node. The private
key goes to the -o file as PEM PKCS#8, the format that
"openssl genpkey -algorithm ed25519" writes, with mode 0600. An existing
file is never overwritten. The public key goes to the -pub file (mode 0644)
as PEM, or to standard output. Its RFC 7638 thumbprint, printed on
standard error, is the key id ("kid") that a trust bundle of PEM keys
assigns to it and that "signet issue" writes into tokens by default.

Examples:
    $ signet keygen -o issuer.key -pub issuer.pub
    $ signet keygen -o node.key > node.pub
`

func (c *command) keygen(args []string) int {
	flagSet := c.flags("keygen", keygenSynopsis)
	out := flagSet.String("o", "", "write the private key to `FILE` (required; must not exist)")
	pubOut := flagSet.String("pub", "", "write the public key to `FILE` (must not exist) instead of standard output")
	positional, status, ok := parse(flagSet, args)
	if !ok {
		return status
	}

	if len(positional) > 0 {
		return c.fail("keygen", exitError, "unexpected argument %s; name the key file with -o", printable(positional[0]))
	}
	if *out == "" {
		return c.fail("keygen", exitError, "-o is required: name the private key file, for example -o node.key")
	}
	if *pubOut != "" && filepath.Clean(*pubOut) == filepath.Clean(*out) {
		return c.fail("keygen", exitError, "-o and -pub both name %s; give the public key its own file", *out)
	}
	if *pubOut != "" {
		if _, err := os.Lstat(*pubOut); err == nil {
			return c.fail("keygen", exitError, "%s already exists, and signet keygen never overwrites a key file; choose another -pub name or move the old file away", *pubOut)
		}
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return c.fail("keygen", exitError, "generating an Ed25519 key: %v", err)
	}
	privPEM, err := signing.MarshalPrivateKeyPEM(priv)
	if err != nil {
		return c.fail("keygen", exitError, "%v", err)
	}
	pubPEM, err := signing.MarshalPublicKeyPEM(pub)
	if err != nil {
		return c.fail("keygen", exitError, "%v", err)
	}
	kid, err := jwk.Thumbprint(pub)
	if err != nil {
		return c.fail("keygen", exitError, "computing the key thumbprint: %v", err)
	}

	if err := writeNewFile(*out, privPEM, 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return c.fail("keygen", exitError, "%v, and signet keygen never overwrites a key file; choose another -o name or move the old key away", err)
		}
		return c.fail("keygen", exitError, "%v", err)
	}

	if *pubOut == "" {
		if _, err := c.stdout.Write(pubPEM); err != nil {
			return c.fail("keygen", exitError, "writing the public key to standard output: %v (the private key is in %s)", err, *out)
		}
	} else if err := writeNewFile(*pubOut, pubPEM, 0o644); err != nil {
		// A private key without its public file is of no use to the
		// caller, who will run keygen again with a free -pub name.
		os.Remove(*out)
		return c.fail("keygen", exitError, "%v; removed %s again, so run the command once more", err, *out)
	}

	fmt.Fprintf(c.stderr, "Private key: %s (mode 0600)\n", *out)
	if *pubOut != "" {
		fmt.Fprintf(c.stderr, "Public key: %s\n", *pubOut)
	}
	fmt.Fprintf(c.stderr, "Key ID (RFC 7638 thumbprint): %s\n", kid)
	return exitOK
}
