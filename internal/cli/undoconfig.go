package cli

import (
	"context"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-dev/sluice/api/v1alpha1"
	"github.com/sluice-dev/sluice/internal/workload"
)

// restoreConfig gives the ConfigMaps and Secrets a record's template
// references the data they had at its revision, so that undo returns the
// configuration as well as the template. The data comes from the primary's
// copies (made when a revision initialises or is promoted, and kept while
// a record names them); an object whose recorded data is no longer kept is
// named in missing and left as it is. Only names are printed, never data.
func restoreConfig(ctx context.Context, cl client.Client, ns, primary string, rec *v1alpha1.CanaryRevision) (restored, missing []string, err error) {
	for _, cfg := range rec.Spec.Config {
		ref := strings.ToLower(cfg.Kind) + "/" + cfg.Name
		copyName := workload.CopyName(primary, ref, cfg.DataHash)
		var res restoreResult
		switch cfg.Kind {
		case "ConfigMap":
			res, err = restoreConfigMap(ctx, cl, ns, cfg.Name, copyName, cfg.DataHash)
		case "Secret":
			res, err = restoreSecret(ctx, cl, ns, cfg.Name, copyName, cfg.DataHash)
		}
		switch {
		case err != nil:
			return restored, missing, err
		case res == configRestored:
			restored = append(restored, ref)
		case res == configNotKept:
			missing = append(missing, ref)
		}
	}
	return restored, missing, nil
}

// restoreResult is what became of one object.
type restoreResult int

const (
	// configUnchanged: it holds the recorded data already.
	configUnchanged restoreResult = iota
	// configRestored: its data was set back (or it was created again).
	configRestored
	// configNotKept: it differs and no copy holds the recorded data.
	configNotKept
)

// restoreConfigMap sets the ConfigMap's data to its copy's when it differs
// from the recorded hash, creating it if it was deleted.
func restoreConfigMap(ctx context.Context, cl client.Client, ns, name, copyName, hash string) (restoreResult, error) {
	var have corev1.ConfigMap
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &have)
	switch {
	case err == nil && workload.ConfigMapHash(&have) == hash:
		return configUnchanged, nil
	case err != nil && !apierrors.IsNotFound(err):
		return configUnchanged, fmt.Errorf("configmap %s/%s: %w", ns, name, err)
	}
	var cp corev1.ConfigMap
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: copyName}, &cp); err != nil {
		if apierrors.IsNotFound(err) {
			return configNotKept, nil
		}
		return configUnchanged, fmt.Errorf("configmap %s/%s (the recorded data of %s): %w", ns, copyName, name, err)
	}
	if have.Name == "" {
		have = corev1.ConfigMap{}
		have.Name, have.Namespace = name, ns
		have.Data, have.BinaryData = maps.Clone(cp.Data), maps.Clone(cp.BinaryData)
		if err := cl.Create(ctx, &have, client.FieldOwner(v1alpha1.CLIFieldOwner)); err != nil {
			return configUnchanged, fmt.Errorf("undo configmap %s/%s: %w", ns, name, err)
		}
		return configRestored, nil
	}
	have.Data, have.BinaryData = maps.Clone(cp.Data), maps.Clone(cp.BinaryData)
	if err := cl.Update(ctx, &have, client.FieldOwner(v1alpha1.CLIFieldOwner)); err != nil {
		return configUnchanged, fmt.Errorf("undo configmap %s/%s: %w", ns, name, err)
	}
	return configRestored, nil
}

// restoreSecret is restoreConfigMap for a Secret.
func restoreSecret(ctx context.Context, cl client.Client, ns, name, copyName, hash string) (restoreResult, error) {
	var have corev1.Secret
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &have)
	switch {
	case err == nil && workload.SecretHash(&have) == hash:
		return configUnchanged, nil
	case err != nil && !apierrors.IsNotFound(err):
		return configUnchanged, fmt.Errorf("secret %s/%s: %w", ns, name, err)
	}
	var cp corev1.Secret
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: copyName}, &cp); err != nil {
		if apierrors.IsNotFound(err) {
			return configNotKept, nil
		}
		return configUnchanged, fmt.Errorf("secret %s/%s (the recorded data of %s): %w", ns, copyName, name, err)
	}
	if have.Name == "" {
		have = corev1.Secret{Type: cp.Type}
		have.Name, have.Namespace = name, ns
		have.Data = maps.Clone(cp.Data)
		if err := cl.Create(ctx, &have, client.FieldOwner(v1alpha1.CLIFieldOwner)); err != nil {
			return configUnchanged, fmt.Errorf("undo secret %s/%s: %w", ns, name, err)
		}
		return configRestored, nil
	}
	have.Data, have.StringData = maps.Clone(cp.Data), nil
	if err := cl.Update(ctx, &have, client.FieldOwner(v1alpha1.CLIFieldOwner)); err != nil {
		return configUnchanged, fmt.Errorf("undo secret %s/%s: %w", ns, name, err)
	}
	return configRestored, nil
}
