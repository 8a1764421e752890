package bmc

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRedfish is an in-process Redfish service (DMTF DSP0266 / DSP8010
// resources) with just what bmclib's gofish provider uses: the service
// root, SessionService sessions (X-Auth-Token), one ComputerSystem with
// ComputerSystem.Reset and a PATCHable Boot object, a Bios resource with a
// separate @Redfish.Settings object, a Manager, a Chassis, and a network
// adapter chain for MAC addresses. It records what clients did.
type fakeRedfish struct {
	user, pass string
	// noBios drops the system's Bios link (a BMC without BIOS support).
	noBios bool

	mu            sync.Mutex
	sessions      map[string]string // session id -> token
	sessionsMade  int
	sessionsEnded int
	loginFailures int
	power         string
	boot          map[string]any
	bootPatches   []map[string]any
	resets        []string
	bios          map[string]any
	pending       map[string]any
	biosPatches   []map[string]any
	// hang makes requests whose path ends with this suffix block (until the
	// client goes away, at most 10 s).
	hang string
	// failReset makes the Reset action answer with this status.
	failReset int
}

const (
	rfRoot       = "/redfish/v1/"
	rfSessions   = "/redfish/v1/SessionService/Sessions"
	rfSystem     = "/redfish/v1/Systems/1"
	rfBios       = "/redfish/v1/Systems/1/Bios"
	rfBiosSet    = "/redfish/v1/Systems/1/Bios/Settings"
	rfManager    = "/redfish/v1/Managers/1"
	rfChassis    = "/redfish/v1/Chassis/1"
	rfAdapter    = "/redfish/v1/Chassis/1/NetworkAdapters/NIC.Slot.1"
	rfFakeMAC    = "AA:BB:CC:00:11:22"
	rfFakeSerial = "SN-4711"
)

func newFakeRedfish(t *testing.T) (*fakeRedfish, *httptest.Server) {
	t.Helper()
	return newFakeRedfishOn(t, nil)
}

// newFakeRedfishOn serves the fake over TLS on ln (a fresh loopback port
// when nil) and closes it when the test ends.
func newFakeRedfishOn(t *testing.T, ln net.Listener) (*fakeRedfish, *httptest.Server) {
	t.Helper()
	f := &fakeRedfish{
		user: "admin", pass: "secret-pw",
		sessions: map[string]string{},
		power:    "Off",
		boot: map[string]any{
			"BootSourceOverrideEnabled": "Disabled",
			"BootSourceOverrideTarget":  "None",
			"BootSourceOverrideMode":    "UEFI",
		},
		bios: map[string]any{
			"BootMode":           "Bios",
			"ProcVirtualization": "Disabled",
			"PxeDev1EnDis":       "Disabled",
			"PxeDev1Interface":   "NIC.Integrated.1-1-1",
			"SysProfile":         "PerfOptimized",
			"LogicalProc":        "Enabled",
		},
		pending: map[string]any{},
	}
	srv := httptest.NewUnstartedServer(f.handler())
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return f, srv
}

// target returns a redfish Target for srv.
func (f *fakeRedfish) target(t *testing.T, srv *httptest.Server, node, password string) Target {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return Target{Node: node, Address: u.Hostname(), Port: port, Driver: DriverRedfish, User: f.user, Password: password}
}

// liveSessions is the number of sessions not yet deleted.
func (f *fakeRedfish) liveSessions() (live, made, ended int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sessions), f.sessionsMade, f.sessionsEnded
}

func (f *fakeRedfish) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /redfish/v1/{$}", f.root)
	mux.HandleFunc("GET /redfish/v1", f.root)
	mux.HandleFunc("POST "+rfSessions, f.login)
	mux.HandleFunc("GET "+rfSessions+"/{id}", f.auth(f.getSession))
	mux.HandleFunc("DELETE "+rfSessions+"/{id}", f.auth(f.logout))
	mux.HandleFunc("GET /redfish/v1/Systems", f.auth(collection("Systems", rfSystem)))
	mux.HandleFunc("GET "+rfSystem, f.auth(f.getSystem))
	mux.HandleFunc("PATCH "+rfSystem, f.auth(f.patchSystem))
	mux.HandleFunc("POST "+rfSystem+"/Actions/ComputerSystem.Reset", f.auth(f.reset))
	mux.HandleFunc("GET "+rfBios, f.auth(f.getBios))
	mux.HandleFunc("GET "+rfBiosSet, f.auth(f.getBiosSettings))
	mux.HandleFunc("PATCH "+rfBiosSet, f.auth(f.patchBios))
	mux.HandleFunc("GET /redfish/v1/Managers", f.auth(collection("Managers", rfManager)))
	mux.HandleFunc("GET "+rfManager, f.auth(static(map[string]any{
		"@odata.type": "#Manager.v1_10_0.Manager", "Id": "1", "Name": "BMC",
		"ManagerType": "BMC", "FirmwareVersion": "2.71", "Status": map[string]any{"State": "Enabled", "Health": "OK"},
	})))
	mux.HandleFunc("GET /redfish/v1/Chassis", f.auth(collection("Chassis", rfChassis)))
	mux.HandleFunc("GET "+rfChassis, f.auth(static(map[string]any{
		"@odata.type": "#Chassis.v1_14_0.Chassis", "Id": "1", "Name": "Chassis", "ChassisType": "RackMount",
		"Manufacturer": "Racklift", "Model": "RL-1", "SerialNumber": rfFakeSerial,
	})))
	mux.HandleFunc("GET "+rfSystem+"/NetworkInterfaces", f.auth(collection("NetworkInterfaces", rfSystem+"/NetworkInterfaces/NIC.Slot.1")))
	mux.HandleFunc("GET "+rfSystem+"/NetworkInterfaces/NIC.Slot.1", f.auth(static(map[string]any{
		"@odata.type": "#NetworkInterface.v1_2_0.NetworkInterface", "Id": "NIC.Slot.1",
		"Links": map[string]any{"NetworkAdapter": map[string]any{"@odata.id": rfAdapter}},
	})))
	mux.HandleFunc("GET "+rfAdapter, f.auth(static(map[string]any{
		"@odata.type": "#NetworkAdapter.v1_5_0.NetworkAdapter", "Id": "NIC.Slot.1", "Manufacturer": "Intel", "Model": "X710",
		"NetworkPorts": map[string]any{"@odata.id": rfAdapter + "/NetworkPorts"},
	})))
	mux.HandleFunc("GET "+rfAdapter+"/NetworkPorts", f.auth(collection("NetworkPorts", rfAdapter+"/NetworkPorts/NIC.Slot.1-1")))
	mux.HandleFunc("GET "+rfAdapter+"/NetworkPorts/NIC.Slot.1-1", f.auth(static(map[string]any{
		"@odata.type": "#NetworkPort.v1_2_0.NetworkPort", "Id": "NIC.Slot.1-1", "PhysicalPortNumber": "1",
		"ActiveLinkTechnology": "Ethernet", "AssociatedNetworkAddresses": []string{rfFakeMAC},
	})))
	mux.HandleFunc("GET "+rfSystem+"/EthernetInterfaces", f.auth(collection("EthernetInterfaces")))
	return mux
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func redfishError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": "Base.1.8.GeneralError", "message": msg}})
}

func collection(name string, members ...string) http.HandlerFunc {
	ms := make([]map[string]string, 0, len(members))
	for _, m := range members {
		ms = append(ms, map[string]string{"@odata.id": m})
	}
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.id": r.URL.Path, "Name": name + " Collection",
			"Members": ms, "Members@odata.count": len(ms),
		})
	}
}

func static(v map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out := maps.Clone(v)
		out["@odata.id"] = r.URL.Path
		writeJSON(w, http.StatusOK, out)
	}
}

// auth requires a live X-Auth-Token and applies the hang knob.
func (f *fakeRedfish) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Auth-Token")
		f.mu.Lock()
		ok := false
		for _, s := range f.sessions {
			if tok != "" && s == tok {
				ok = true
			}
		}
		hang := f.hang != "" && strings.HasSuffix(r.URL.Path, f.hang) && r.Method == http.MethodGet
		f.mu.Unlock()
		if !ok {
			redfishError(w, http.StatusUnauthorized, "no valid session")
			return
		}
		if hang {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		h(w, r)
	}
}

func (f *fakeRedfish) root(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot", "@odata.id": rfRoot,
		"Id": "RootService", "Name": "Root Service", "RedfishVersion": "1.6.0",
		"UUID":           "92384634-2938-2342-8820-489239905423",
		"Systems":        map[string]string{"@odata.id": "/redfish/v1/Systems"},
		"Managers":       map[string]string{"@odata.id": "/redfish/v1/Managers"},
		"Chassis":        map[string]string{"@odata.id": "/redfish/v1/Chassis"},
		"SessionService": map[string]string{"@odata.id": "/redfish/v1/SessionService"},
		"Links":          map[string]any{"Sessions": map[string]string{"@odata.id": rfSessions}},
	})
}

func (f *fakeRedfish) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ UserName, Password string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "bad body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if body.UserName != f.user || body.Password != f.pass {
		f.loginFailures++
		redfishError(w, http.StatusUnauthorized, "invalid username or password")
		return
	}
	id, tok := randHex(4), randHex(16)
	f.sessions[id] = tok
	f.sessionsMade++
	loc := rfSessions + "/" + id
	w.Header().Set("X-Auth-Token", tok)
	w.Header().Set("Location", loc)
	writeJSON(w, http.StatusCreated, map[string]any{
		"@odata.id": loc, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "Session", "UserName": body.UserName,
	})
}

func (f *fakeRedfish) getSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	_, ok := f.sessions[id]
	f.mu.Unlock()
	if !ok {
		redfishError(w, http.StatusNotFound, "no such session")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.id": r.URL.Path, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "Session", "UserName": f.user,
	})
}

func (f *fakeRedfish) logout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sessions[id]; !ok {
		redfishError(w, http.StatusNotFound, "no such session")
		return
	}
	delete(f.sessions, id)
	f.sessionsEnded++
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeRedfish) getSystem(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sys := map[string]any{
		"@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem", "@odata.id": rfSystem,
		"Id": "1", "Name": "System", "SystemType": "Physical",
		"Manufacturer": "Racklift", "Model": "RL-1", "SerialNumber": rfFakeSerial, "BiosVersion": "1.2.3",
		"PowerState": f.power,
		"Boot":       maps.Clone(f.boot),
		"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
			"target":                            rfSystem + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle"},
		}},
		"NetworkInterfaces":  map[string]string{"@odata.id": rfSystem + "/NetworkInterfaces"},
		"EthernetInterfaces": map[string]string{"@odata.id": rfSystem + "/EthernetInterfaces"},
	}
	if !f.noBios {
		sys["Bios"] = map[string]string{"@odata.id": rfBios}
	}
	writeJSON(w, http.StatusOK, sys)
}

func (f *fakeRedfish) patchSystem(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "bad body")
		return
	}
	boot, ok := body["Boot"].(map[string]any)
	if !ok {
		redfishError(w, http.StatusBadRequest, "only Boot is writable")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bootPatches = append(f.bootPatches, boot)
	maps.Copy(f.boot, boot)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeRedfish) reset(w http.ResponseWriter, r *http.Request) {
	var body struct{ ResetType string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "bad body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReset != 0 {
		redfishError(w, f.failReset, "reset failed")
		return
	}
	f.resets = append(f.resets, body.ResetType)
	switch body.ResetType {
	case "On", "ForceRestart", "PowerCycle":
		f.power = "On"
		maps.Copy(f.bios, f.pending) // staged BIOS settings apply at reset
		clear(f.pending)
	case "ForceOff", "GracefulShutdown":
		f.power = "Off"
	default:
		redfishError(w, http.StatusBadRequest, "bad ResetType")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeRedfish) getBios(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type": "#Bios.v1_1_0.Bios", "@odata.id": rfBios, "Id": "Bios", "Name": "BIOS Configuration",
		"Attributes":        maps.Clone(f.bios),
		"@Redfish.Settings": map[string]any{"SettingsObject": map[string]string{"@odata.id": rfBiosSet}},
	})
}

func (f *fakeRedfish) getBiosSettings(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type": "#Bios.v1_1_0.Bios", "@odata.id": rfBiosSet, "Id": "Settings", "Name": "BIOS pending settings",
		"Attributes": maps.Clone(f.pending),
	})
}

func (f *fakeRedfish) patchBios(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		redfishError(w, http.StatusBadRequest, "bad body")
		return
	}
	attrs, _ := body["Attributes"].(map[string]any)
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range attrs {
		if _, known := f.bios[k]; !known {
			redfishError(w, http.StatusBadRequest, "unknown attribute "+k)
			return
		}
	}
	f.biosPatches = append(f.biosPatches, body)
	maps.Copy(f.pending, attrs)
	w.WriteHeader(http.StatusNoContent)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
