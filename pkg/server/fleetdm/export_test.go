package fleetdm

// IsOwnReference is isOwnReference, for the external tests.
var IsOwnReference = isOwnReference
