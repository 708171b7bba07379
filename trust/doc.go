// Package trust holds vouch's trust material as it is read: certificates,
// public keys and Sigstore trusted roots, from a Source (a file, PEM held
// inline in a config file, or a key of a Kubernetes Secret or ConfigMap
// named by a Ref and read through a Resolver), each read bounded and with errors that name
// where it came from; and Fingerprinter, which hashes trust files so that
// verdicts cached under some trust material are used only under the same.
package trust
