package simdevice

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/smallstep/pkcs7"
)

// KeyType chooses the algorithm of a generated identity key.
type KeyType string

// Key types real enrollment profiles produce (SCEP issues RSA, ACME on
// recent OSes ECDSA P-256). The zero value means ECDSA: it is fast to generate.
const (
	KeyECDSA KeyType = "ecdsa"
	KeyRSA   KeyType = "rsa"
)

// validity is long enough for any test run and short enough to look
// like a real device certificate.
const validity = 365 * 24 * time.Hour

func generateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case "", KeyECDSA:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("unknown key type %q (want %s or %s)", kt, KeyECDSA, KeyRSA)
}

// CA issues device identity certificates, as an enrollment profile's SCEP
// or ACME payload would. Its PEM is what NanoMDM's -ca flag takes.
type CA struct {
	Cert *x509.Certificate
	key  crypto.Signer
}

// NewCA makes a self-signed ECDSA CA whose leaves NanoMDM accepts.
//
// NanoMDM (certverify.NewPoolVerifier with x509.ExtKeyUsageClientAuth)
// runs x509 chain verification asking for client auth: every certificate in
// the chain must carry the client-auth EKU, the any EKU, or no EKU at all.
// The CA carries client auth so it also works as a lone client identity.
func NewCA(name string) (*CA, error) {
	key, err := generateKey(KeyECDSA)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// NewCAPEM makes a CA as NewCA does and returns it as PEM, for a test that
// writes NanoMDM's -ca file itself and loads the CA back with LoadCA.
func NewCAPEM(name string) (certPEM, keyPEM []byte, err error) {
	ca, err := NewCA(name)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(ca.key)
	if err != nil {
		return nil, nil, err
	}
	return ca.PEM(), keyPEM, nil
}

// LoadCA reads a CA certificate and its private key (PKCS#8, EC or PKCS#1
// PEM), for issuing device identities from a CA the test already has.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	id, err := LoadIdentity(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if !id.Cert.IsCA {
		return nil, errors.New("certificate is not a CA (basic constraints)")
	}
	return &CA{Cert: id.Cert, key: id.Key}, nil
}

// PEM is the CA certificate in PEM form.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA private key as PKCS#8 PEM.
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.key) }

// Issue makes an ECDSA identity certificate for the device named cn.
func (ca *CA) Issue(cn string) (Identity, error) { return ca.IssueKey(cn, KeyECDSA) }

// IssueKey makes an identity certificate with a key of type kt. It carries
// the client-auth EKU, as SCEP profiles for MDM request.
func (ca *CA) IssueKey(cn string, kt KeyType) (Identity, error) {
	key, err := generateKey(kt)
	if err != nil {
		return Identity{}, err
	}
	tmpl := identityTemplate(cn)
	if _, ok := key.(*rsa.PrivateKey); ok {
		// RSA identities also encipher in real SCEP profiles.
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return Identity{}, fmt.Errorf("issuing identity for %s: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Cert: cert, Key: key}, nil
}

// identityTemplate is a client-auth leaf for cn, the shape NanoMDM accepts.
func identityTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// Identity is a device's identity certificate and key.
type Identity struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// SelfSigned makes a self-signed client-auth identity. Its CertPEM is also a
// valid NanoMDM -ca file, which suits a test with a single device. NanoMDM
// binds a certificate to one enrollment, so a second device needs its own.
func SelfSigned(cn string, kt KeyType) (Identity, error) {
	key, err := generateKey(kt)
	if err != nil {
		return Identity{}, err
	}
	tmpl := identityTemplate(cn)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Identity{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Cert: cert, Key: key}, nil
}

// LoadIdentity reads a certificate and its private key from PEM.
func LoadIdentity(certPEM, keyPEM []byte) (Identity, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return Identity{}, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return Identity{}, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return Identity{}, errors.New("no PEM private key block")
	}
	var key any
	switch kb.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("parsing private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return Identity{}, fmt.Errorf("private key type %T cannot sign", key)
	}
	if !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return Identity{}, errors.New("private key does not match the certificate")
	}
	return Identity{Cert: cert, Key: signer}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ak, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ak.Equal(b)
}

// CertPEM is the identity certificate in PEM form.
func (id Identity) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Cert.Raw})
}

// KeyPEM is the identity private key as PKCS#8 PEM.
func (id Identity) KeyPEM() ([]byte, error) { return encodeKey(id.Key) }

// MdmSignature returns the value of the Mdm-Signature header for body: the
// base64 of a detached CMS SignedData over body, signed by the identity and
// carrying its certificate, which is how NanoMDM learns who is calling.
func (id Identity) MdmSignature(body []byte) (string, error) {
	if id.Cert == nil || id.Key == nil {
		return "", errors.New("identity has no certificate or key")
	}
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		return "", err
	}
	// The library defaults to SHA-1; devices sign with SHA-256.
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(id.Cert, id.Key, pkcs7.SignerInfoConfig{}); err != nil {
		return "", err
	}
	sd.Detach()
	der, err := sd.Finish()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(der), nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
