package engine

import (
	"fmt"

	"github.com/sluice-dev/sluice/api/v1alpha1"
)

// routeTo asks for the canary weight w when the copies that would receive
// traffic are Ready, and reports whether the router already carries it.
func (d *decider) routeTo(w int32) bool {
	withdraw := w == 0 && d.activeHeaderRoute() == nil && d.activeMirror() == 0
	if d.obs.Blocked != "" && !(withdraw && d.obs.BlockedWithdrawable) {
		// No half-applied route: nothing is written until the
		// configuration is fixed.
		d.waiting(d.obs.BlockedReason, d.obs.Blocked+"; traffic stays where it is")
		d.stall(d.obs.BlockedReason, d.obs.Blocked)
		// Not every object a configuration problem names is watched (a
		// router's Middleware, say): look again in a while.
		d.requeue(BlockedRecheckInterval)
		return false
	}
	if w > 0 {
		if ok, why := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold()); !ok {
			d.waiting(v1alpha1.ReasonWaitingForCanary, why)
			return false
		}
	}
	if w < 100 {
		stable := d.st.StableRevision
		if d.st.Phase == v1alpha1.PhaseInitializing || stable == "" {
			stable = d.obs.Target.Revision
		}
		if ok, why := d.ready("primary", d.obs.Primary, stable, d.primaryThreshold()); !ok {
			d.waiting(v1alpha1.ReasonWaitingForPrimary, why)
			return false
		}
	}
	d.out.Desired.CanaryWeight = ptr(w)
	hr, mirror := d.activeHeaderRoute(), d.activeMirror()
	d.out.Desired.HeaderRoute = hr
	d.out.Desired.MirrorPercent = mirror
	d.st.CanaryWeight = w
	r := d.obs.Route
	if r.Exists {
		d.st.ObservedCanaryWeight = ptr(r.CanaryWeight)
	}
	d.st.EndpointShare = nil
	if sh := r.Share; sh != nil && sh.Canary > 0 && sh.Primary > 0 {
		d.st.EndpointShare = sh.DeepCopy()
	}
	if !r.Exists || r.CanaryWeight != w || r.Pending != "" || r.HeaderRoute != HeaderRouteKey(hr) || r.MirrorPercent != mirror {
		msg := fmt.Sprintf("waiting for the router to carry canary weight %d%%", w)
		if hr != nil {
			msg += " and the header route " + HeaderRouteKey(hr)
		}
		if mirror > 0 {
			msg += fmt.Sprintf(" and a %d%% mirror", mirror)
		}
		if r.Pending != "" {
			msg += ": " + r.Pending
		}
		d.waiting(d.st.Reason, msg)
		d.requeue(RoutePollInterval)
		return false
	}
	return d.awaitSettle(w, mirror, HeaderRouteKey(hr))
}

// routeReachesCanary says whether the route read back sends or copies any
// request to the canary: a weight, a header route or a mirror.
func (d *decider) routeReachesCanary() bool {
	r := d.obs.Route
	return r.Exists && (r.CanaryWeight > 0 || r.HeaderRoute != "" || r.MirrorPercent > 0)
}

// describeRoute puts a route in words.
func describeRoute(rs *v1alpha1.RouteSettling) string {
	out := fmt.Sprintf("canary weight %d%%", rs.CanaryWeight)
	if rs.MirrorPercent != 0 {
		out += fmt.Sprintf(", mirror %d%%", rs.MirrorPercent)
	}
	if rs.HeaderRoute != "" {
		out += ", header route " + rs.HeaderRoute
	}
	return out
}

// settleElapsed says whether the route read back has been carried for the
// router's settle time (always, without one).
func (d *decider) settleElapsed() bool {
	r := d.obs.Route
	if r.Settle <= 0 {
		return true
	}
	rs := d.st.RouteSettling
	return rs.Is(r.CanaryWeight, r.MirrorPercent, r.HeaderRoute) && !d.exact.Before(rs.Since.Add(r.Settle))
}

// awaitSettle gives a router whose proxy reports nothing back its settle time
// after a route is first read back, so that a step counts as applied (and
// a copy is scaled down) only once the proxy can have loaded it.
func (d *decider) awaitSettle(weight, mirror int32, headerRoute string) bool {
	settle := d.obs.Route.Settle
	if settle <= 0 {
		d.st.RouteSettling = nil
		return true
	}
	if !d.st.RouteSettling.Is(weight, mirror, headerRoute) {
		d.st.RouteSettling = &v1alpha1.RouteSettling{CanaryWeight: weight, MirrorPercent: mirror, HeaderRoute: headerRoute, Since: *d.stamp()}
		d.routeCarried = true
	}
	left := d.st.RouteSettling.Since.Add(settle).Sub(d.exact)
	if left <= 0 {
		return true
	}
	d.waiting(d.st.Reason, fmt.Sprintf("router carries the route (%s); giving the proxy %s to load it", describeRoute(d.st.RouteSettling), settle))
	d.requeue(left)
	return false
}

// activeHeaderRoute is the header route in force: the last setHeaderRoute
// step up to the current one, while a release walks its steps and the
// canary is Ready. None otherwise.
func (d *decider) activeHeaderRoute() *v1alpha1.HeaderRoute {
	var hr *v1alpha1.HeaderRoute
	for _, s := range d.stepsInForce() {
		if s.SetHeaderRoute != nil {
			hr = s.SetHeaderRoute
		}
	}
	return hr
}

// activeMirror is the mirrored share in force: that of the last setMirror
// step up to the current one, under the same conditions as a header route.
func (d *decider) activeMirror() int32 {
	var p int32
	for _, s := range d.stepsInForce() {
		if s.SetMirror != nil {
			p = s.SetMirror.Percent
		}
	}
	return p
}

// stepsInForce are the steps up to the current one while a release walks
// its steps and the canary is Ready: the steps whose routing (header
// route, mirror) holds. None otherwise, so no request is ever sent or
// copied to a canary that is not Ready.
func (d *decider) stepsInForce() []v1alpha1.Step {
	if !walking(d.st.Phase) {
		return nil
	}
	if ok, _ := d.ready("canary", d.obs.Target, d.st.CanaryRevision, d.canaryThreshold()); !ok {
		return nil
	}
	return d.steps[:min(int(d.st.CurrentStep)+1, len(d.steps))]
}
