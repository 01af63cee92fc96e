package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/signet-micro/signet/internal/jwk"
	"github.com/signet-micro/signet/signing"
	"github.com/signet-micro/signet/verify"
)

const inspectSynopsis = `    signet inspect -bundle FILE [-aud LIST] [-iss NAME] [-alg LIST]
                   [-revocations FILE] [-json] TOKEN_FILE | -

Decodes an identity token, verifies it against the trust bundle (a JWK Set
or PEM public keys) as a service would, and prints its header, its claims,
the RFC 7638 thumbprint of the node key in its "cnf" claim, and a line
"valid: yes" or "valid: no (REASON: ERROR)". The token is read from
TOKEN_FILE, or from standard input for "-". The whole token is never
printed. Exits with status 1 when the token is invalid.

Examples:
    $ signet inspect -bundle bundle.jwks greeter.jwt
    $ signet inspect -bundle issuer.pub -aud signet-prod -json - < greeter.jwt
`

// tokenReport is the decoded header and claims of a token with its
// verification result, as inspect prints them in text or as JSON.
type tokenReport struct {
	Header struct {
		Alg string `json:"alg,omitempty"`
		Kid string `json:"kid,omitempty"`
		Typ string `json:"typ,omitempty"`
	} `json:"header"`
	Claims struct {
		Iss      string   `json:"iss,omitempty"`
		Sub      string   `json:"sub,omitempty"`
		Aud      []string `json:"aud,omitempty"`
		Iat      string   `json:"iat,omitempty"`
		Nbf      string   `json:"nbf,omitempty"`
		Exp      string   `json:"exp,omitempty"`
		Jti      string   `json:"jti,omitempty"`
		Services []string `json:"services,omitempty"`
		Topics   []string `json:"topics,omitempty"`
	} `json:"claims"`
	CnfThumbprint string `json:"cnf_thumbprint,omitempty"`
	Valid         bool   `json:"valid"`
	Reason        string `json:"reason,omitempty"`
	Error         string `json:"error,omitempty"`

	expiry time.Time
}

func (c *command) inspect(args []string) int {
	flagSet := c.flags("inspect", inspectSynopsis)
	bundleFile := flagSet.String("bundle", "", "verify against the trust bundle in `FILE`, a JWK Set or PEM public keys (required)")
	var audience, algorithms listFlag
	flagSet.Var(&audience, "aud", "accept tokens for one of these comma-separated `audiences` (default \""+signing.DefaultAudience+"\")")
	flagSet.Var(&algorithms, "alg", "accept these comma-separated JWS `algorithms` (default \"EdDSA\")")
	issuerName := flagSet.String("iss", "", "require the \"iss\" claim to be `NAME`")
	revocationFile := flagSet.String("revocations", "", "reject token and key ids listed in `FILE` (lines \"jti ID\" or \"kid ID\")")
	asJSON := flagSet.Bool("json", false, "print the report as one JSON object")
	positional, status, ok := parse(flagSet, args)
	if !ok {
		return status
	}

	switch {
	case len(positional) == 0:
		return c.fail("inspect", exitError, "name the token file, or \"-\" to read the token from standard input")
	case len(positional) > 1:
		return c.fail("inspect", exitError, "inspect takes one token file, and got %d arguments", len(positional))
	case *bundleFile == "":
		return c.fail("inspect", exitError, "-bundle is required: give the trust bundle to verify against, for example -bundle bundle.jwks")
	}

	verifier, err := c.tokenVerifier(*bundleFile, audience, algorithms, *issuerName, *revocationFile)
	if err != nil {
		return c.fail("inspect", exitError, "%v", err)
	}

	data, err := c.readInput(positional[0])
	if err != nil {
		return c.fail("inspect", exitError, "%v", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return c.fail("inspect", exitError, "%s is empty; expected an identity token (a JWT)", positional[0])
	}

	report := describeToken(token)
	if _, err := verifier.VerifyToken(token); err != nil {
		report.Reason, report.Error = verify.Reason(err), err.Error()
	} else {
		report.Valid = true
	}

	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return c.fail("inspect", exitError, "writing the report: %v", err)
		}
	} else {
		c.printTokenReport(report)
	}

	if !report.Valid {
		return exitInvalid
	}
	return exitOK
}

// tokenVerifier builds a verifier from the trust bundle file and the
// flags, with the clock of c and no cache.
func (c *command) tokenVerifier(bundleFile string, audience, algorithms []string, issuer, revocationFile string) (*verify.Verifier, error) {
	data, err := c.readInput(bundleFile)
	if err != nil {
		return nil, err
	}
	bundle, err := verify.ParseBundle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", bundleFile, err)
	}

	opts := []verify.Option{verify.WithBundle(bundle), verify.WithClock(c.now), verify.WithCacheSize(0)}
	if len(audience) > 0 {
		opts = append(opts, verify.WithAudience(audience...))
	}
	if len(algorithms) > 0 {
		opts = append(opts, verify.WithAlgorithms(algorithms...))
	}
	if issuer != "" {
		opts = append(opts, verify.WithIssuer(issuer))
	}
	if revocationFile != "" {
		data, err := c.readInput(revocationFile)
		if err != nil {
			return nil, err
		}
		list, err := verify.ParseRevocations(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", revocationFile, err)
		}
		opts = append(opts, verify.WithRevocations(list))
	}
	return verify.New(opts...)
}

// describeToken decodes the header and claims of token without checking
// its signature. A token that does not decode gives an empty report.
func describeToken(token string) *tokenReport {
	r := &tokenReport{}
	claims := &signing.Claims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, claims)
	if err != nil {
		return r
	}

	r.Header.Alg, _ = parsed.Header["alg"].(string)
	r.Header.Kid, _ = parsed.Header["kid"].(string)
	r.Header.Typ, _ = parsed.Header["typ"].(string)

	r.Claims.Iss = claims.Issuer
	r.Claims.Sub = claims.Subject
	r.Claims.Aud = claims.Audience
	r.Claims.Iat = numericDate(claims.IssuedAt)
	r.Claims.Nbf = numericDate(claims.NotBefore)
	r.Claims.Exp = numericDate(claims.ExpiresAt)
	r.Claims.Jti = claims.ID
	r.Claims.Services = claims.Services
	r.Claims.Topics = claims.Topics
	if claims.ExpiresAt != nil {
		r.expiry = claims.ExpiresAt.Time
	}

	if key, err := claims.NodeKey(); err == nil {
		r.CnfThumbprint, _ = jwk.Thumbprint(key)
	}
	return r
}

func numericDate(d *jwt.NumericDate) string {
	if d == nil {
		return ""
	}
	return formatTime(d.Time)
}

func (c *command) printTokenReport(r *tokenReport) {
	exp := printable(r.Claims.Exp)
	if !r.expiry.IsZero() {
		exp = formatRelative(r.expiry, c.now())
	}

	lines := []struct{ name, value string }{
		{"alg", printable(r.Header.Alg)},
		{"kid", printable(r.Header.Kid)},
		{"iss", printable(r.Claims.Iss)},
		{"sub", printable(r.Claims.Sub)},
		{"aud", printableList(r.Claims.Aud)},
		{"iat", printable(r.Claims.Iat)},
		{"nbf", printable(r.Claims.Nbf)},
		{"exp", exp},
		{"jti", printable(r.Claims.Jti)},
		{"services", printableList(r.Claims.Services)},
		{"topics", printableList(r.Claims.Topics)},
		{"cnf thumbprint", printable(r.CnfThumbprint)},
	}
	for _, l := range lines {
		fmt.Fprintf(c.stdout, "%s: %s\n", l.name, l.value)
	}

	if r.Valid {
		fmt.Fprintln(c.stdout, "valid: yes")
	} else {
		fmt.Fprintf(c.stdout, "valid: no (%s: %s)\n", r.Reason, sanitize(r.Error))
	}
}
