package signing

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParsePrivateKeyPEM decodes an Ed25519 private key from a PEM "PRIVATE
// KEY" block holding PKCS#8, as `openssl genpkey -algorithm ed25519` and
// `signet keygen` write it. Error messages never contain key material.
func ParsePrivateKeyPEM(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found; expected a \"PRIVATE KEY\" block as `openssl genpkey -algorithm ed25519` writes")
	}

	switch block.Type {
	case "PRIVATE KEY":
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the private key is encrypted; decrypt it with `openssl pkey -in KEY -out PLAIN` and protect the file with permissions instead")
	default:
		return nil, fmt.Errorf("PEM block is %q; expected \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}

	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("the PRIVATE KEY block is not valid PKCS#8")
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the private key is %T; signet node and issuer keys are Ed25519", key)
	}
	return priv, nil
}

// MarshalPrivateKeyPEM encodes an Ed25519 private key as a PEM PKCS#8
// "PRIVATE KEY" block.
func MarshalPrivateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes a public key as a PEM "PUBLIC KEY" block
// (PKIX), the form trust bundles accept.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
