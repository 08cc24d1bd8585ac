// Package apple holds Apple's MDM DeviceLock protocol: the command and its
// response as Apple's schema (apple/device-management, mdm/commands/device.lock.yaml)
// defines them, the input rules every MDM vendor applies to them, and the
// Apple silicon deactivation rule. It does no I/O.
package apple
