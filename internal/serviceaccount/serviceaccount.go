// Package serviceaccount runs a Sluice controller the way an install
// does, outside an install: as a ServiceAccount bound to exactly the
// ClusterRole Sluice ships (config/rbac/role.yaml). The playground, the
// test environment and the image test use it.
package serviceaccount

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
)

// ShippedRole reads the ClusterRole Sluice ships, config/rbac/role.yaml
// under the repository root.
func ShippedRole(root string) (*rbacv1.ClusterRole, error) {
	path := filepath.Join(root, "config", "rbac", "role.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &role); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &role, nil
}

// Bind makes, or brings up to date, the namespace ns, the ServiceAccount
// name in it, the ClusterRole role with rules, and the ClusterRoleBinding
// role that grants it to the ServiceAccount. Objects that already exist
// are kept; the ClusterRole's rules are set to rules.
func Bind(ctx context.Context, cs kubernetes.Interface, ns, name, role string, rules []rbacv1.PolicyRule) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("serviceaccount %s/%s: %w", ns, name, err)
	}
	roles := cs.RbacV1().ClusterRoles()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		have, err := roles.Get(ctx, role, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = roles.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: rules}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Made meanwhile by another process: update it.
				return apierrors.NewConflict(rbacv1.Resource("clusterroles"), role, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		have.Rules = rules
		_, err = roles.Update(ctx, have, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("clusterrole %s: %w", role, err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("clusterrolebinding %s: %w", role, err)
	}
	return nil
}
