package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// testPKI is a private CA with a server certificate for 127.0.0.1 and a
// client certificate, as an organization's internal PKI would issue.
type testPKI struct {
	caPEM                   []byte
	server                  tls.Certificate
	clientPEM, clientKeyPEM []byte
	pool                    *x509.CertPool
}

func newTestPKI() (*testPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mdmctl test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
		return der, key, err
	}
	serverDER, serverKey, err := leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		return nil, err
	}
	clientDER, clientKey, err := leaf(3, x509.ExtKeyUsageClientAuth, nil)
	if err != nil {
		return nil, err
	}
	clientKeyDER, err := x509.MarshalPKCS8PrivateKey(clientKey)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testPKI{
		caPEM:        pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		server:       tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey},
		clientPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientDER}),
		clientKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: clientKeyDER}),
		pool:         pool,
	}, nil
}

// cmdTLSServer starts an HTTPS NanoMDM stand-in whose certificate comes
// from a private CA (written to ca.pem) and points mdmctl at it. With mtls
// it also demands a client certificate from that CA (client.pem and
// client.key are written): tls-server [mtls].
func cmdTLSServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 {
		ts.Fatalf("usage: tls-server [mtls]")
	}
	pki, err := newTestPKI()
	ts.Check(err)
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"no_push":true}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}}
	if len(args) == 1 && args[0] == "mtls" {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = pki.pool
	}
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	ts.Defer(srv.Close)
	work := ts.Getenv("WORK")
	for name, data := range map[string][]byte{"ca.pem": pki.caPEM, "client.pem": pki.clientPEM, "client.key": pki.clientKeyPEM} {
		ts.Check(os.WriteFile(filepath.Join(work, name), data, 0o600))
	}
	counters.Store(srv.URL, &n)
	ts.Setenv(countingKey, srv.URL)
	ts.Setenv("MDMCTL_SERVER", srv.URL)
	ts.Setenv("MDMCTL_API_KEY", "fault-key")
}
