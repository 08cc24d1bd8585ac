// Package servertest holds what the stand-ins for servers that cannot run
// here (MicroMDM, Fleet) share.
package servertest

import (
	"encoding/json"
	"net/http"
)

// WriteJSON answers with indented JSON, as both MicroMDM's httputil and
// Fleet's encodeResponse do.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
