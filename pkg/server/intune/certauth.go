package intune

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/oauth"
)

// Certificate credentials: instead of a client secret, the app proves
// itself with a JWT signed by the private key of a certificate uploaded to
// its registration (Microsoft identity platform "certificate credentials",
// learn.microsoft.com/entra/identity-platform/certificate-credentials:
// client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer,
// a JWT whose claims are aud (the token URL), iss and sub (the client ID),
// jti, nbf, iat and exp, at most 5-10 minutes after nbf). The page now
// documents alg PS256 with x5t#S256 (the base64url SHA-256 thumbprint of
// the certificate's DER); its earlier version RS256 with x5t (SHA-1).
// mdmctl follows the current page.

// CertificatePrefix marks a configured secret that names the app's
// certificate credentials rather than being a client secret:
// "certificate:/path/app.pem", a PEM file (mode 600) holding the private
// key and its certificate. (mdmctl's key files are one line, so the PEM
// itself cannot be the key file.) A PEM given inline (MDMCTL_API_KEY) works
// too.
const CertificatePrefix = "certificate:"

// IsCertificate reports whether a configured secret is certificate
// credentials rather than a client secret.
func IsCertificate(secret string) bool {
	return strings.HasPrefix(secret, CertificatePrefix) || strings.Contains(secret, "-----BEGIN ")
}

// LoadCertificate reads the certificate credentials a secret names.
func LoadCertificate(secret string) (*rsa.PrivateKey, *x509.Certificate, error) {
	path, named := strings.CutPrefix(secret, CertificatePrefix)
	if !named {
		return ParseCertificate(secret)
	}
	path = strings.TrimSpace(path)
	info, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate credentials file %s: %v", path, errors.Unwrap(err))
	}
	if info.Mode().Perm()&0o004 != 0 {
		return nil, nil, fmt.Errorf("certificate credentials file %s is readable by everyone (mode %04o); run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate credentials file %s: %v", path, errors.Unwrap(err))
	}
	return ParseCertificate(string(data))
}

// assertionLife is how long a client assertion is valid; a new one is made
// for every token request.
const assertionLife = 10 * time.Minute

// CertSource fetches Graph tokens with certificate credentials, caching
// each for its lifetime (less a minute).
type CertSource struct {
	TokenURL, ClientID, Scope string
	Key                       *rsa.PrivateKey
	Cert                      *x509.Certificate
	HTTP                      *http.Client
	Now                       func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// ParseCertificate reads an RSA private key (PKCS#1 or PKCS#8) and the
// certificate it belongs to from PEM.
func ParseCertificate(pemData string) (*rsa.PrivateKey, *x509.Certificate, error) {
	var (
		key  *rsa.PrivateKey
		cert *x509.Certificate
	)
	rest := []byte(pemData)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			if cert == nil {
				c, err := x509.ParseCertificate(b.Bytes)
				if err != nil {
					return nil, nil, fmt.Errorf("certificate credentials: %v", err)
				}
				cert = c
			}
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, errors.New("certificate credentials: the RSA private key does not parse")
			}
			key = k
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, errors.New("certificate credentials: the private key does not parse")
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, nil, errors.New("certificate credentials: the private key is not RSA (Entra ID's client assertions are signed PS256)")
			}
			key = rk
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, errors.New("certificate credentials: the private key is encrypted; give it unencrypted in a file only you can read")
		}
	}
	switch {
	case key == nil:
		return nil, nil, errors.New("certificate credentials: no private key in the PEM (want the key and its certificate in one file)")
	case cert == nil:
		return nil, nil, errors.New("certificate credentials: no certificate in the PEM (want the key and its certificate in one file)")
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("certificate credentials: the private key does not belong to the certificate")
	}
	return key, cert, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Thumbprint is x5t#S256: the base64url SHA-256 of the certificate's DER.
func Thumbprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return b64(sum[:])
}

func (s *CertSource) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// assertion makes a fresh client assertion.
func (s *CertSource) assertion() (string, error) {
	now := s.now()
	header, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "x5t#S256": Thumbprint(s.Cert)})
	claims, _ := json.Marshal(map[string]any{
		"aud": s.TokenURL, "iss": s.ClientID, "sub": s.ClientID, "jti": uuid.NewString(),
		"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(assertionLife).Unix(),
	})
	signing := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPSS(rand.Reader, s.Key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	if err != nil {
		return "", err
	}
	return signing + "." + b64(sig), nil
}

// Invalidate drops the cached token.
func (s *CertSource) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = ""
}

// Token returns the cached token or fetches a new one.
func (s *CertSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.now().Before(s.expires) {
		return s.token, nil
	}
	origin := oauth.EndpointOrigin(s.TokenURL)
	jwt, err := s.assertion()
	if err != nil {
		return "", err
	}
	form := url.Values{
		"grant_type": {"client_credentials"}, "client_id": {s.ClientID}, "scope": {s.Scope},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {jwt},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, body, err := server.Exchange(s.HTTP, req, 1<<20)
	if err != nil {
		return "", err
	}
	var reply struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &reply)
	reason := strings.TrimSpace(reply.Error + ": " + server.FirstLine(reply.Description))
	if reply.Error == "" {
		reason = server.Excerpt(body)
	}
	if resp.StatusCode == http.StatusOK && reply.AccessToken != "" {
		s.token = reply.AccessToken
		s.expires = s.now().Add(time.Duration(max(reply.ExpiresIn-60, 0)) * time.Second)
		return s.token, nil
	}
	return "", oauth.Refused(origin, resp.StatusCode, reply.Error, reason, "client's certificate credentials")
}
