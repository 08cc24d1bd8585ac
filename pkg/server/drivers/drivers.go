// Package drivers registers every server kind mdmctl ships: import it for
// its side effect. Adding a kind is its package plus one line here.
package drivers

import (
	_ "github.com/mdmctl/mdmctl/pkg/server/fleetdm"
	_ "github.com/mdmctl/mdmctl/pkg/server/intune"
	_ "github.com/mdmctl/mdmctl/pkg/server/jamf"
	_ "github.com/mdmctl/mdmctl/pkg/server/kandji"
	_ "github.com/mdmctl/mdmctl/pkg/server/micromdm"
	_ "github.com/mdmctl/mdmctl/pkg/server/nanomdm"
	_ "github.com/mdmctl/mdmctl/pkg/server/raw"
	_ "github.com/mdmctl/mdmctl/pkg/server/sandboxkind"
	_ "github.com/mdmctl/mdmctl/pkg/server/simplemdm"
)
