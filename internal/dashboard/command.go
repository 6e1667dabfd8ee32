package dashboard

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// NewCommand is `kubectl sluice dashboard`.
func NewCommand(flags *genericclioptions.ConfigFlags) *cobra.Command {
	var (
		address, token string
		port           int
		all            bool
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve a web UI of the releases on localhost, as you (your kubeconfig, your RBAC)",
		Long: `Serve a web UI of the Canaries: every release at a glance, and one release's
steps, weight over time, checks per round, gates, Events and history, with
promote, abort, retry, pause, resume and undo. It talks to the cluster with
your kubeconfig: you see and may do what your RBAC allows, and nothing is
installed in the cluster.

It listens on 127.0.0.1 only. With --address beyond loopback every request
needs a token (--token, or a random one printed in the URL).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := flags.ToRESTConfig()
			if err != nil {
				return fmt.Errorf("kubeconfig: %w", err)
			}
			ns := ""
			if !all {
				if ns, _, err = flags.ToRawKubeConfigLoader().Namespace(); err != nil {
					return fmt.Errorf("namespace: %w", err)
				}
			}
			addr := net.JoinHostPort(address, strconv.Itoa(port))
			if !Loopback(addr) && token == "" {
				if token, err = NewToken(); err != nil {
					return err
				}
			}
			s, err := New(cmd.Context(), Options{Config: cfg, Namespace: ns, Token: token})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another with --port)", addr, err)
			}
			url := "http://" + l.Addr().String() + "/"
			if token != "" {
				url += "?token=" + token
			}
			scope := "namespace " + ns
			if ns == "" {
				scope = "every namespace"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Sluice dashboard (%s) at %s\nCtrl-C stops it.\n", scope, url)
			return s.Serve(cmd.Context(), l)
		},
	}
	cmd.Flags().StringVar(&address, "address", "127.0.0.1", "the address to listen on; beyond loopback a token is required")
	cmd.Flags().IntVar(&port, "port", 3100, "the port to listen on (0: any free port)")
	cmd.Flags().StringVar(&token, "token", "", "require this token on every request (default beyond loopback: a random one)")
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "show Canaries in every namespace")
	return cmd
}
