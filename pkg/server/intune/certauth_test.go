package intune_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/intune"
)

// appCert makes a key and self-signed certificate, as an admin uploading
// one to the app registration would, and writes them in one PEM file.
func appCert(t *testing.T, pkcs8 bool, mode os.FileMode) (*x509.Certificate, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mdmctl"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyBlock := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if pkcs8 {
		b, _ := x509.MarshalPKCS8PrivateKey(key)
		keyBlock = &pem.Block{Type: "PRIVATE KEY", Bytes: b}
	}
	path := filepath.Join(t.TempDir(), "app.pem")
	data := append(pem.EncodeToMemory(keyBlock), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	return cert, path
}

func certClient(t *testing.T, baseURL, secret string) *intune.Client {
	t.Helper()
	key, cert, err := intune.LoadCertificate(secret)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(baseURL)
	tokenURL, scope := intune.TokenEndpoint(base, tenant)
	hc := &http.Client{Timeout: 5 * time.Second}
	return &intune.Client{BaseURL: base, HTTP: hc, Concurrency: 2, PINWait: 200 * time.Millisecond,
		Tokens: &intune.CertSource{TokenURL: tokenURL, ClientID: clientID, Scope: scope, Key: key, Cert: cert, HTTP: hc},
		Retry:  server.Retry{Max: 1, Base: time.Millisecond, MaxDelay: time.Second}}
}

func TestCertificateCredentials(t *testing.T) {
	s := start(t, mini, phone)
	for i, pkcs8 := range []bool{false, true} {
		id := []string{mini.UDID, phone.UDID}[i]
		cert, path := appCert(t, pkcs8, 0o600)
		if !intune.IsCertificate(intune.CertificatePrefix + path) {
			t.Fatal("not taken for certificate credentials")
		}
		s.SetCertificate(cert)
		c := certClient(t, s.URL, intune.CertificatePrefix+path)
		res, err := c.Enqueue(context.Background(), lock(id))
		if err != nil || res.Devices[0].Outcome != server.Queued || len(s.Locks(id)) != 1 {
			t.Fatalf("pkcs8=%t: %v %+v", pkcs8, err, res)
		}
	}
	// A certificate the app registration does not hold is refused: exit 4.
	_, other := appCert(t, false, 0o600)
	c := certClient(t, s.URL, intune.CertificatePrefix+other)
	_, err := c.Enqueue(context.Background(), lock(mini.UDID))
	if !errors.Is(err, server.ErrUnauthorized) || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Fatalf("unregistered certificate: %v", err)
	}
}

func TestCertificateFileRules(t *testing.T) {
	_, open := appCert(t, false, 0o644)
	if _, _, err := intune.LoadCertificate(intune.CertificatePrefix + open); err == nil || !strings.Contains(err.Error(), "readable by everyone") {
		t.Fatalf("world-readable: %v", err)
	}
	_, path := appCert(t, false, 0o600)
	data, _ := os.ReadFile(path)
	keyOnly := string(data[:strings.Index(string(data), "-----BEGIN CERTIFICATE")])
	if _, _, err := intune.ParseCertificate(keyOnly); err == nil || !strings.Contains(err.Error(), "no certificate") {
		t.Fatalf("key only: %v", err)
	}
	_, otherPath := appCert(t, false, 0o600)
	other, _ := os.ReadFile(otherPath)
	mismatch := keyOnly + string(other[strings.Index(string(other), "-----BEGIN CERTIFICATE"):])
	if _, _, err := intune.ParseCertificate(mismatch); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Fatalf("mismatch: %v", err)
	}
}

// TestAssertionShape: the client assertion is what Microsoft's page on
// certificate credentials documents now: PS256, x5t#S256, aud the token
// URL, iss and sub the client ID, a jti, a short lifetime.
func TestAssertionShape(t *testing.T) {
	cert, path := appCert(t, false, 0o600)
	key, _, err := intune.LoadCertificate(intune.CertificatePrefix + path)
	if err != nil {
		t.Fatal(err)
	}
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3599}`)
	}))
	defer srv.Close()
	src := &intune.CertSource{TokenURL: srv.URL + "/T/oauth2/v2.0/token", ClientID: clientID, Scope: "https://graph.microsoft.com/.default",
		Key: key, Cert: cert, HTTP: srv.Client()}
	if tok, err := src.Token(context.Background()); err != nil || tok != "tok" {
		t.Fatalf("%q %v", tok, err)
	}
	if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form.Get("client_secret") != "" ||
		form.Get("client_id") != clientID || form.Get("grant_type") != "client_credentials" {
		t.Fatalf("form %v", form)
	}
	parts := strings.Split(form.Get("client_assertion"), ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	var h map[string]string
	var c struct {
		Aud, Iss, Sub, Jti string
		Nbf, Exp, Iat      int64
	}
	_ = json.Unmarshal(hb, &h)
	_ = json.Unmarshal(cb, &c)
	sum := sha256.Sum256(cert.Raw)
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if h["alg"] != "PS256" || h["typ"] != "JWT" || h["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) ||
		rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, digest[:], sig, nil) != nil {
		t.Fatalf("header %v", h)
	}
	if c.Aud != src.TokenURL || c.Iss != clientID || c.Sub != clientID || c.Jti == "" || c.Exp-c.Nbf > 600 || c.Exp <= time.Now().Unix() {
		t.Fatalf("claims %+v", c)
	}
	// Cached for its lifetime.
	form = nil
	if tok, _ := src.Token(context.Background()); tok != "tok" || form != nil {
		t.Fatal("token not cached")
	}
}
