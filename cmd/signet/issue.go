package main

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-micro/signet/signing"
)

const issueSynopsis = `    signet issue -key FILE (-node-pub FILE | -node-key FILE) -sub NAME
                 -services LIST [-topics LIST] [-aud LIST] [-iss NAME]
                 [-lifetime DURATION] [-kid ID] [-o FILE [-force]]

Signs an identity token with the issuer key for one node key. The token
names the workload (-sub), the service names it may register (-services,
exact names or prefixes ending in "*") and the broker topics it may
subscribe to (-topics), and carries the node's public key in its "cnf"
claim. The token goes to the -o file with mode 0600, or to standard
output. An existing file is replaced only with -force, and then
atomically, so a service that reloads the file never reads half a token.
The token id (jti), the issuer key id (kid) and the expiry are printed on
standard error.

Examples:
    $ signet issue -key issuer.key -node-pub greeter.pub -sub greeter \
          -services 'greeter,greeter.*' -lifetime 720h -o greeter.jwt
    # Renew the token of a running node in place.
    $ signet issue -key issuer.key -node-pub greeter.pub -sub greeter \
          -services 'greeter,greeter.*' -lifetime 720h -o greeter.jwt -force
    # A subscriber of the http broker needs its service name and topics.
    $ signet issue -key issuer.key -node-key worker.key -sub worker \
          -services 'worker,micro.http.broker' -topics 'orders.*' -o worker.jwt
`

func (c *command) issue(args []string) int {
	flagSet := c.flags("issue", issueSynopsis)
	keyFile := flagSet.String("key", "", "sign with the issuer's Ed25519 private key in `FILE` (PEM PKCS#8; required)")
	nodePubFile := flagSet.String("node-pub", "", "issue the token for the node public key in `FILE` (PEM)")
	nodeKeyFile := flagSet.String("node-key", "", "issue the token for the public half of the node private key in `FILE` (PEM PKCS#8)")
	subject := flagSet.String("sub", "", "set the \"sub\" claim to `NAME`, the workload, for example greeter (required)")
	var services, topics, audience listFlag
	flagSet.Var(&services, "services", "allow the comma-separated service name `patterns`; a pattern is a name or a prefix ending in \"*\"")
	flagSet.Var(&topics, "topics", "allow the comma-separated broker topic `patterns`")
	flagSet.Var(&audience, "aud", "set the \"aud\" claim to these comma-separated `values` (default \""+signing.DefaultAudience+"\")")
	issuerName := flagSet.String("iss", "", "set the \"iss\" claim to `NAME`")
	lifetime := flagSet.Duration("lifetime", 24*time.Hour, "keep the token valid for `DURATION` from now, for example 24h or 720h")
	kid := flagSet.String("kid", "", "write `ID` as the \"kid\" header (default: the RFC 7638 thumbprint of the issuer public key)")
	out := flagSet.String("o", "", "write the token to `FILE` (mode 0600) instead of standard output")
	force := flagSet.Bool("force", false, "replace the -o file when it exists")
	positional, status, ok := parse(flagSet, args)
	if !ok {
		return status
	}

	switch {
	case len(positional) > 0:
		return c.fail("issue", exitError, "unexpected argument %s; every input of issue is a flag (see signet issue -h)", printable(positional[0]))
	case *keyFile == "":
		return c.fail("issue", exitError, "-key is required: give the issuer private key file, for example -key issuer.key")
	case *nodePubFile == "" && *nodeKeyFile == "":
		return c.fail("issue", exitError, "give the node's key with -node-pub node.pub (its public key) or -node-key node.key")
	case *nodePubFile != "" && *nodeKeyFile != "":
		return c.fail("issue", exitError, "-node-pub and -node-key both name the node key; give only one")
	case *subject == "":
		return c.fail("issue", exitError, "-sub is required: name the workload, for example -sub greeter")
	case len(services) == 0 && len(topics) == 0:
		return c.fail("issue", exitError, "-services is required: list the service names the node may register, for example -services 'greeter,greeter.*'")
	case *lifetime <= 0:
		return c.fail("issue", exitError, "-lifetime %v is not positive; give a duration such as 24h", *lifetime)
	case *force && *out == "":
		return c.fail("issue", exitError, "-force needs -o: it replaces an existing token file")
	}

	issuerKey, err := c.readPrivateKey(*keyFile)
	if err != nil {
		return c.fail("issue", exitError, "issuer key: %v", err)
	}
	nodeKey, err := c.nodePublicKey(*nodePubFile, *nodeKeyFile)
	if err != nil {
		return c.fail("issue", exitError, "node key: %v", err)
	}
	if nodeKey.Equal(issuerKey.Public()) {
		return c.fail("issue", exitError, "the node key is the issuer key; give each node its own key (signet keygen -o node.key)")
	}

	if len(topics) > 0 && !signing.MatchAny(services, signing.BrokerService) {
		fmt.Fprintf(c.stderr, "signet issue: warning: the token allows topics, but not the service %q under which the http broker registers subscribers; add it to -services\n", signing.BrokerService)
	}

	issuer := &signing.Issuer{Key: issuerKey, KeyID: *kid, Name: *issuerName, Now: c.now}
	token, err := issuer.Issue(signing.Identity{
		Subject:  *subject,
		NodeKey:  nodeKey,
		Services: services,
		Topics:   topics,
		Audience: audience,
		Lifetime: *lifetime,
	})
	if err != nil {
		return c.fail("issue", exitError, "%v", err)
	}

	claims := &signing.Claims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, claims)
	if err != nil {
		return c.fail("issue", exitError, "decoding the token just issued: %v", err)
	}
	headerKID, _ := parsed.Header["kid"].(string)

	if err := c.writeOutput(*out, []byte(token+"\n"), 0o600, *force); err != nil {
		return c.fail("issue", exitError, "%v", err)
	}

	if *out != "" {
		fmt.Fprintf(c.stderr, "Token: %s (mode 0600)\n", *out)
	}
	fmt.Fprintf(c.stderr, "Token ID (jti): %s\n", claims.ID)
	fmt.Fprintf(c.stderr, "Issuer key ID (kid): %s\n", headerKID)
	fmt.Fprintf(c.stderr, "Expires: %s\n", formatRelative(claims.ExpiresAt.Time, c.now()))
	return exitOK
}

// nodePublicKey reads the node's public key from the PEM public key file
// pubFile, or derives it from the PEM private key file keyFile when
// pubFile is empty.
func (c *command) nodePublicKey(pubFile, keyFile string) (ed25519.PublicKey, error) {
	if pubFile != "" {
		return c.readPublicKey(pubFile)
	}
	key, err := c.readPrivateKey(keyFile)
	if err != nil {
		return nil, err
	}
	return key.Public().(ed25519.PublicKey), nil
}
