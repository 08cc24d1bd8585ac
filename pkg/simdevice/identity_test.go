package simdevice

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/micromdm/nanomdm/certverify"
	"github.com/micromdm/nanomdm/cryptoutil"
)

// serverAccepts runs the two checks NanoMDM v0.9.0 applies to every device
// request (cmd/nanomdm/main.go): the Mdm-Signature must verify over the
// body, and its signer must chain to the -ca PEM for client auth.
func serverAccepts(t *testing.T, caPEM []byte, id Identity) error {
	t.Helper()
	body := []byte("<plist><dict><key>MessageType</key><string>Authenticate</string></dict></plist>")
	sig, err := id.MdmSignature(body)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := cryptoutil.VerifyMdmSignature(sig, body)
	if err != nil {
		t.Fatalf("NanoMDM rejects the signature: %v", err)
	}
	if !signer.Equal(id.Cert) {
		t.Fatal("the signature does not carry the identity certificate")
	}
	if _, err := cryptoutil.VerifyMdmSignature(sig, append(body, ' ')); err == nil {
		t.Fatal("the signature verified over a different body")
	}
	v, err := certverify.NewPoolVerifier(caPEM, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	return v.Verify(context.Background(), signer)
}

func TestIdentitiesNanoMDMAccepts(t *testing.T) {
	ca, err := NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []KeyType{KeyECDSA, KeyRSA, ""} {
		id, err := ca.IssueKey("DEV-"+string(kt), kt)
		if err != nil {
			t.Fatal(err)
		}
		if err := serverAccepts(t, ca.PEM(), id); err != nil {
			t.Errorf("%q identity from the CA: %v", kt, err)
		}
		self, err := SelfSigned("SELF-"+string(kt), kt)
		if err != nil {
			t.Fatal(err)
		}
		if err := serverAccepts(t, self.CertPEM(), self); err != nil {
			t.Errorf("%q self-signed identity as its own -ca: %v", kt, err)
		}
	}
	id, _ := ca.IssueKey("RSA", KeyRSA)
	if _, ok := id.Key.(*rsa.PrivateKey); !ok {
		t.Errorf("KeyRSA made a %T", id.Key)
	}
	id, _ = ca.Issue("EC")
	if _, ok := id.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("Issue made a %T", id.Key)
	}
	if _, err := ca.IssueKey("X", "dsa"); err == nil {
		t.Error("an unknown key type was accepted")
	}
	other, _ := NewCA("other CA")
	if err := serverAccepts(t, other.PEM(), id); err == nil {
		t.Error("an identity from another CA was accepted")
	}
}

// TestExtendedKeyUsage pins what NanoMDM's verifier asks of EKUs: client
// auth or none, on the leaf and on the CA alike.
func TestExtendedKeyUsage(t *testing.T) {
	issue := func(ca *CA, isCA bool, eku ...x509.ExtKeyUsage) Identity {
		t.Helper()
		key, _ := generateKey(KeyECDSA)
		tmpl := &x509.Certificate{
			SerialNumber: serial(), Subject: pkix.Name{CommonName: "eku"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: eku,
			BasicConstraintsValid: isCA, IsCA: isCA,
		}
		parent, signer := tmpl, any(key)
		if ca != nil {
			parent, signer = ca.Cert, ca.key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(der)
		return Identity{Cert: cert, Key: key}
	}
	ca, _ := NewCA("client-auth CA")
	if err := serverAccepts(t, ca.PEM(), issue(ca, false)); err != nil {
		t.Errorf("leaf without EKU: %v", err)
	}
	if err := serverAccepts(t, ca.PEM(), issue(ca, false, x509.ExtKeyUsageAny)); err != nil {
		t.Errorf("leaf with any EKU: %v", err)
	}
	if err := serverAccepts(t, ca.PEM(), issue(ca, false, x509.ExtKeyUsageServerAuth)); err == nil {
		t.Error("a server-auth-only leaf was accepted")
	}
	serverCA := issue(nil, true, x509.ExtKeyUsageServerAuth)
	sca := &CA{Cert: serverCA.Cert, key: serverCA.Key}
	if err := serverAccepts(t, sca.PEM(), issue(sca, false, x509.ExtKeyUsageClientAuth)); err == nil {
		t.Error("a client-auth leaf under a server-auth-only CA was accepted")
	}
	plainCA := issue(nil, true)
	pca := &CA{Cert: plainCA.Cert, key: plainCA.Key}
	if err := serverAccepts(t, pca.PEM(), issue(pca, false)); err != nil {
		t.Errorf("no EKU anywhere: %v", err)
	}
}

func TestPEMRoundTrip(t *testing.T) {
	certPEM, keyPEM, err := NewCAPEM("pem CA")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ca.IssueKey("PEM-DEV", KeyRSA)
	if err != nil {
		t.Fatal(err)
	}
	if err := serverAccepts(t, certPEM, id); err != nil {
		t.Fatalf("identity from a loaded CA: %v", err)
	}
	idKey, err := id.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadIdentity(id.CertPEM(), idKey)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(id.Cert) {
		t.Error("identity certificate changed in a PEM round trip")
	}
	if err := serverAccepts(t, certPEM, back); err != nil {
		t.Errorf("reloaded identity: %v", err)
	}
	if _, err := LoadIdentity(id.CertPEM(), keyPEM); err == nil {
		t.Error("LoadIdentity accepted the CA key for the device certificate")
	}
	if _, err := LoadCA(id.CertPEM(), idKey); err == nil {
		t.Error("LoadCA accepted a leaf certificate")
	}
	caKey, _ := ca.KeyPEM()
	if _, err := LoadCA(ca.PEM(), caKey); err != nil {
		t.Errorf("LoadCA of KeyPEM: %v", err)
	}
	if _, err := (Identity{}).MdmSignature(nil); err == nil {
		t.Error("an empty identity signed")
	}
}
