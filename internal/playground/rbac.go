package playground

import (
	"context"
	"fmt"
	"os"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/sluice-dev/sluice/internal/serviceaccount"
)

// The controller of the playground runs as an installed one would: as the
// ServiceAccount sluice in sluice-system, bound to exactly the ClusterRole
// Sluice ships (config/rbac/role.yaml), never as the cluster's admin.
const (
	controllerNamespace = "sluice-system"
	controllerAccount   = "sluice"
	controllerRole      = "sluice-playground-manager"
)

// controllerKubeconfig makes (or brings up to date) the ServiceAccount and
// its binding (serviceaccount.Bind), asks a token for it (a week: the
// playground may stay up), and writes a kubeconfig with that token to
// path.
func controllerKubeconfig(ctx context.Context, o Options, cfg *rest.Config, path string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	shipped, err := serviceaccount.ShippedRole(o.Root)
	if err != nil {
		return err
	}
	if err := serviceaccount.Bind(ctx, cs, controllerNamespace, controllerAccount, controllerRole, shipped.Rules); err != nil {
		return err
	}
	tok, err := cs.CoreV1().ServiceAccounts(controllerNamespace).CreateToken(ctx, controllerAccount, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(7 * 24 * 3600))}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for %s/%s: %w", controllerNamespace, controllerAccount, err)
	}
	ca := cfg.CAData
	if len(ca) == 0 {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return err
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[controllerAccount] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kc.Contexts["sluice"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: controllerAccount, Namespace: controllerNamespace}
	kc.CurrentContext = "sluice"
	return clientcmd.WriteToFile(*kc, path)
}
