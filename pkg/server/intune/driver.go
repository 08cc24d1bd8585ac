package intune

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/oauth"
)

// Kind names Intune in settings.
const Kind = "intune"

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "Microsoft Intune: Graph's remoteLock; device facts from its managed devices, answers polled from their action results",
		NeedsAPIKey: true,
		DefaultURL:  "https://graph.microsoft.com",
		// remoteLock takes one managed device per request.
		Limits: server.Limits{MaxIDs: 1, MaxIDBytes: 1 << 10},
		// Intune always pushes, and has no command of the admin's own (so no
		// DeviceInformation preflight). It has no "already exists" answer,
		// but the adapter reads the device's action results before resending
		// a command that may have landed (a lost reply, a resumed run) and
		// reports it queued or unknown rather than lock twice: so --resume
		// may send the devices an earlier run left unknown.
		Capabilities: server.Capabilities{Inventory: true, SerialNumbers: true, NoInformation: true, RecognizesResend: true},
		PlanLock:     PlanLock,
		Open:         open,
	})
}

// Warning is what PlanLock tells the user before anything is sent.
const Warning = "the intune kind takes no PIN, message or phone number: Intune makes each Mac's unlock PIN itself; " +
	"mdmctl reads it from the lock's action result (remoteLockActionResult.unlockPin) and escrows it, " +
	"and where Intune has not published it yet the Mac's line says so: it is then in the Intune admin center (the device's overview) for 30 days " +
	"(with --wait, mdmctl escrows it if Intune publishes it before the Mac answers)"

// PlanLock refuses what Graph's remoteLock cannot carry: it has no body,
// so no PIN, message or phone number. Intune makes a Mac's PIN itself.
func PlanLock(lock apple.DeviceLock, mayBeMac bool) (server.LockPlan, error) {
	var refused []string
	if lock.PIN != "" {
		refused = append(refused, "a PIN (--pin, --pin-file, --pin-generate, MDMCTL_PIN)")
	}
	if lock.Message != "" {
		refused = append(refused, "a lock-screen message (--message)")
	}
	if lock.PhoneNumber != "" {
		refused = append(refused, "a phone number (--phone)")
	}
	if lock.RequestRequiresNetworkTether {
		refused = append(refused, "RequestRequiresNetworkTether")
	}
	if len(refused) > 0 {
		return server.LockPlan{}, fmt.Errorf("the %s kind cannot send %s: Microsoft Graph's remoteLock takes no values (Intune makes a Mac's unlock PIN itself); drop it",
			Kind, strings.Join(refused, ", "))
	}
	if !mayBeMac {
		return server.LockPlan{}, nil // an iPhone or iPad keeps its own passcode
	}
	return server.LockPlan{ServerPIN: true, Warning: Warning}, nil
}

// Graph clouds and their Entra ID (login) hosts, from Microsoft's "national
// cloud deployments" page. The scope is the Graph host's own .default.
var clouds = map[string]string{
	"graph.microsoft.com":             "login.microsoftonline.com",
	"graph.microsoft.us":              "login.microsoftonline.us",
	"dod-graph.microsoft.us":          "login.microsoftonline.us",
	"microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}

// TokenEndpoint returns the token URL and scope for a Graph root and an
// Entra tenant. A known Graph cloud takes its login host; any other host
// (a stand-in, a proxy in front of Graph) serves the token endpoint at its
// own origin, under the same path, and is asked for Graph's global scope.
func TokenEndpoint(base *url.URL, tenant string) (tokenURL, scope string) {
	host := strings.ToLower(base.Hostname())
	path := "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	if login, ok := clouds[host]; ok {
		return "https://" + login + path, "https://" + host + "/.default"
	}
	return server.Origin(base) + path, "https://graph.microsoft.com/.default"
}

// validTenant accepts a tenant ID (a GUID) or a verified domain name.
func validTenant(t string) bool {
	if t == "" || len(t) > 253 {
		return false
	}
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// GraphRoot is cfg's server URL without a trailing API version: the admin
// may give https://graph.microsoft.com or https://graph.microsoft.com/v1.0.
func GraphRoot(u *url.URL) *url.URL {
	r := *u
	r.Path = strings.TrimRight(r.Path, "/")
	for _, v := range []string{"/" + APIVersion, "/beta"} {
		r.Path = strings.TrimSuffix(r.Path, v)
	}
	r.RawPath = ""
	return &r
}

func open(_ context.Context, cfg server.Config) (*server.Session, error) {
	switch {
	case cfg.Tenant == "":
		return nil, exitcode.Usagef("the %s kind needs the Entra ID tenant its app registration belongs to: set MDMCTL_TENANT (or tenant in the context) to the tenant ID or its domain", Kind)
	case !validTenant(cfg.Tenant):
		return nil, exitcode.Usagef("the %s kind: tenant %q is not a tenant ID or domain name (MDMCTL_TENANT)", Kind, cfg.Tenant)
	case cfg.User == "":
		return nil, exitcode.Usagef("the %s kind needs the app registration's application (client) ID: set MDMCTL_API_USER (or api-user in the context); its client secret goes in MDMCTL_API_KEY or MDMCTL_API_KEY_FILE", Kind)
	}
	base := GraphRoot(cfg.BaseURL)
	tokenURL, scope := TokenEndpoint(base, cfg.Tenant)
	var tokens Tokens = oauth.New(oauth.Client{TokenURL: tokenURL, ID: cfg.User, Secret: cfg.APIKey, Scopes: []string{scope}}, cfg.HTTP)
	if IsCertificate(cfg.APIKey) {
		// The secret names the app's certificate and private key.
		key, cert, err := LoadCertificate(cfg.APIKey)
		if err != nil {
			return nil, &exitcode.UsageError{Err: fmt.Errorf("the %s kind: %v (the secret is %s/path/to/key-and-cert.pem)", Kind, err, CertificatePrefix)}
		}
		tokens = &CertSource{TokenURL: tokenURL, ClientID: cfg.User, Scope: scope, Key: key, Cert: cert, HTTP: cfg.HTTP}
	}
	c := &Client{BaseURL: base, Tokens: tokens, HTTP: cfg.HTTP, Retry: cfg.Retry, Concurrency: cfg.Concurrency}
	answers, closeSession := server.Poll(cfg, "polling Intune for action results", c.Watch)
	return &server.Session{
		Server:  c,
		Name:    server.Origin(base),
		Close:   closeSession,
		Answers: answers,
		PINs:    c.KeepPINs,
		Serials: c.Serials,
		Facts:   c.Devices,
	}, nil
}
