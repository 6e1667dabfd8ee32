package v1alpha1

// Field managers: the names Sluice's writes carry in an object's
// metadata.managedFields.
const (
	// FieldOwner is the controller's field manager, for every object it
	// writes (the primary copy, Services, routes, CanaryRevisions, the
	// Canary's status).
	FieldOwner = "sluice"
	// CLIFieldOwner is the field manager of `kubectl sluice`'s writes.
	CLIFieldOwner = "kubectl-sluice"
)
