package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"

	"github.com/signet-micro/signet/verify"
)

const bundleSynopsis = `    signet bundle [-o FILE [-force]] [-kid LIST] KEY_FILE...

Builds a trust bundle, an RFC 7517 JWK Set, from issuer public keys. Each
KEY_FILE holds PEM "PUBLIC KEY" blocks or a JWK Set, so an existing bundle
can be extended. A PEM key gets its RFC 7638 thumbprint as key id, which
is also what "signet issue" writes as "kid" by default; -kid sets the ids
instead, one for each KEY_FILE, in order. The bundle goes to the -o file
(mode 0644) or to standard output; an existing file is replaced, atomically,
only with -force.

To rotate an issuer key, publish a bundle with the old and the new key,
issue new tokens with the new key, and drop the old key once its last
token has expired.

Examples:
    $ signet bundle -o bundle.jwks issuer.pub
    $ signet bundle -o bundle.jwks -force issuer-2025.pub issuer-2026.pub
    $ signet bundle -kid prod-1,prod-2 old.pub new.pub > bundle.jwks
`

func (c *command) bundle(args []string) int {
	flagSet := c.flags("bundle", bundleSynopsis)
	out := flagSet.String("o", "", "write the JWK Set to `FILE` instead of standard output")
	force := flagSet.Bool("force", false, "replace the -o file when it exists")
	var kids listFlag
	flagSet.Var(&kids, "kid", "use these comma-separated key `ids`, one for each KEY_FILE, in order (default: each key's RFC 7638 thumbprint)")
	files, status, ok := parse(flagSet, args)
	if !ok {
		return status
	}

	switch {
	case len(files) == 0:
		return c.fail("bundle", exitError, "name at least one public key file, for example: signet bundle -o bundle.jwks issuer.pub")
	case len(kids) > 0 && len(kids) != len(files):
		return c.fail("bundle", exitError, "-kid lists %d key ids for %d key files; give one id for each file", len(kids), len(files))
	case *force && *out == "":
		return c.fail("bundle", exitError, "-force needs -o: it replaces an existing bundle file")
	}

	var keys []verify.IssuerKey
	source := map[string]string{} // key id to the file it came from
	for i, file := range files {
		fileKeys, err := c.readIssuerKeys(file)
		if err != nil {
			return c.fail("bundle", exitError, "%v", err)
		}
		if len(kids) > 0 {
			if len(fileKeys) != 1 {
				return c.fail("bundle", exitError, "%s contains %d keys, and -kid needs exactly one key in each file", file, len(fileKeys))
			}
			fileKeys[0].ID = kids[i]
		}

		for _, k := range fileKeys {
			if prev, dup := source[k.ID]; dup {
				return c.fail("bundle", exitError, "key id %s appears in both %s and %s; list each key once, or set distinct ids with -kid", printable(k.ID), prev, file)
			}
			source[k.ID] = file
			keys = append(keys, k)
		}
	}

	b, err := verify.NewBundle(keys...)
	if err != nil {
		return c.fail("bundle", exitError, "%v", err)
	}
	jwks, err := b.MarshalJWKS()
	if err != nil {
		return c.fail("bundle", exitError, "encoding the JWK Set: %v", err)
	}

	if err := c.writeOutput(*out, append(jwks, '\n'), 0o644, *force); err != nil {
		return c.fail("bundle", exitError, "%v", err)
	}
	for _, k := range keys {
		fmt.Fprintf(c.stderr, "kid %s: %s key from %s\n", printable(k.ID), keyType(k.Key), source[k.ID])
	}
	if *out != "" {
		fmt.Fprintf(c.stderr, "Trust bundle: %s (%s)\n", *out, plural(len(keys), "key"))
	}
	return exitOK
}

// readIssuerKeys returns the keys in a PEM or JWK Set file, in key id
// order.
func (c *command) readIssuerKeys(file string) ([]verify.IssuerKey, error) {
	data, err := c.readInput(file)
	if err != nil {
		return nil, err
	}
	b, err := verify.ParseBundle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}

	var keys []verify.IssuerKey
	for _, id := range b.KeyIDs() {
		k, _ := b.Key(id)
		keys = append(keys, *k)
	}
	return keys, nil
}

func keyType(k crypto.PublicKey) string {
	switch k := k.(type) {
	case ed25519.PublicKey:
		return "Ed25519"
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", k.N.BitLen())
	default:
		return fmt.Sprintf("%T", k)
	}
}
