package hcloudsim

import (
	"fmt"
	"slices"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// catalog is the read-only part of the API as Hetzner offers it today: the current server types,
// the retired generation with its per-location deprecation, images per architecture, locations
// with their network zones, and data centers.
//
// Sources: Hetzner's changelog of 2025-10-16 ("server types deprecated": CX Gen2 cx22…cx52 and,
// in the EU locations, CPX Gen1 cpx11…cpx51 unavailable for order after 2025-12-31; the new CX
// Gen3 cx23…cx53 and CPX Gen2 cpx12…cpx62 are EU-only); hcloud-go v2.52.0's schema (per-location
// deprecation, available, recommended) and its, the CLI's, Terraform's and Pulumi's examples,
// which moved to cx23 and cpx22; the spec's DeprecationInfo ("once this date is reached, the
// resource will not be returned by resource type list endpoint, and the resource can not be used
// to create new resources"). Cores, memory and disk are Hetzner's published sizes. Type IDs of
// the old generation are Hetzner's; those of the new generation and the prices are the
// simulator's own (net EUR, approximate list prices: the service only reads them back).
type catalog struct {
	serverTypes []schema.ServerType
	images      []schema.Image
	locations   []schema.Location
	// datacenters are served as the spec copy (2026-05-15) describes them (GET /datacenters,
	// server.datacenter) until Hetzner removed them; see datacenterPropertyRemoved and
	// datacentersEndpointRemoved.
	//
	//lint:ignore SA1019 simulates the deprecated datacenters until their removal dates
	datacenters []schema.Datacenter
}

// The removal of data centers, by the simulated today (the same "after" convention as the
// retired server types):
//   - datacenterPropertyRemoved: servers' `datacenter` property, deprecated on 2025-12-16 ("will
//     be removed after 1 July 2026", changelog 2025-12-16 "phasing out datacenters"; CLI v1.59.0)
//     and removed from the API in July 2026 (hcloud-go v2.45.0 and CLI v1.67.0 release notes:
//     "the property was already removed from the Hetzner Cloud API"). hcloud-go v2.52.0 does not
//     read it.
//   - datacentersEndpointRemoved: GET /datacenters and /datacenters/{id}, deprecated on
//     2026-06-02 and "removed after 1 Oct. 2026. After this date, requests to these endpoints will
//     return HTTP 410 Gone" (hcloud-go v2.44.0, CLI v1.66.0 release notes), answered with the
//     spec's 410 deprecated_api_endpoint envelope and its announcement link.
var (
	datacenterPropertyRemoved  = time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC)
	datacentersEndpointRemoved = time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)
)

// datacentersAnnouncement is the changelog entry a removed /datacenters request points to.
const datacentersAnnouncement = "https://docs.hetzner.cloud/changelog#2026-06-02-datacenters-deprecated"

// Deprecation dates of the retired generation (changelog 2025-10-16): announced then,
// unavailable for order after 2025-12-31, i.e. from 2026-01-01T00:00:00Z on.
var (
	retiredAnnounced        = time.Date(2025, 10, 16, 0, 0, 0, 0, time.UTC)
	retiredUnavailableAfter = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

var (
	euLocations  = []string{"fsn1", "nbg1", "hel1"}
	allLocations = []string{"fsn1", "nbg1", "hel1", "ash", "hil", "sin"}
)

// typeSpec is one server type of the catalog.
type typeSpec struct {
	id          int64
	name, cpu   string
	cores, disk int
	mem         float32
	arch        string
	monthly     float64 // net EUR per month in the EU
	// available lists where it can be ordered; deprecated where it is being retired.
	available, deprecated []string
}

func serverTypeSpecs() []typeSpec {
	return []typeSpec{
		// CX Gen3 (shared vCPU, Intel/AMD), EU only.
		{116, "cx23", "shared", 2, 40, 4, "x86", 3.99, euLocations, nil},
		{117, "cx33", "shared", 4, 80, 8, "x86", 6.49, euLocations, nil},
		{118, "cx43", "shared", 8, 160, 16, "x86", 11.99, euLocations, nil},
		{119, "cx53", "shared", 16, 320, 32, "x86", 22.49, euLocations, nil},
		// CPX Gen2 (shared vCPU, AMD), EU only.
		{108, "cpx12", "shared", 1, 40, 2, "x86", 5.49, euLocations, nil},
		{109, "cpx22", "shared", 2, 80, 4, "x86", 7.99, euLocations, nil},
		{110, "cpx32", "shared", 4, 160, 8, "x86", 13.99, euLocations, nil},
		{111, "cpx42", "shared", 8, 320, 16, "x86", 25.49, euLocations, nil},
		{112, "cpx52", "shared", 12, 480, 24, "x86", 36.49, euLocations, nil},
		{113, "cpx62", "shared", 16, 640, 32, "x86", 50.49, euLocations, nil},
		// CAX (shared vCPU, Ampere Arm), EU.
		{45, "cax11", "shared", 2, 40, 4, "arm", 4.49, euLocations, nil},
		{93, "cax21", "shared", 4, 80, 8, "arm", 7.99, euLocations, nil},
		{94, "cax31", "shared", 8, 160, 16, "arm", 15.99, euLocations, nil},
		{95, "cax41", "shared", 16, 320, 32, "arm", 31.49, euLocations, nil},
		// CCX (dedicated vCPU, AMD), everywhere.
		{96, "ccx13", "dedicated", 2, 80, 8, "x86", 14.49, allLocations, nil},
		{97, "ccx23", "dedicated", 4, 160, 16, "x86", 28.49, allLocations, nil},
		{98, "ccx33", "dedicated", 8, 240, 32, "x86", 56.49, allLocations, nil},
		{99, "ccx43", "dedicated", 16, 360, 64, "x86", 112.49, allLocations, nil},
		{100, "ccx53", "dedicated", 32, 600, 128, "x86", 224.49, allLocations, nil},
		{101, "ccx63", "dedicated", 48, 960, 192, "x86", 336.49, allLocations, nil},
		// Retired: CX Gen2 everywhere (EU only), CPX Gen1 in the EU (still sold in ash, hil, sin).
		{104, "cx22", "shared", 2, 40, 4, "x86", 4.59, nil, euLocations},
		{105, "cx32", "shared", 4, 80, 8, "x86", 7.59, nil, euLocations},
		{106, "cx42", "shared", 8, 160, 16, "x86", 18.59, nil, euLocations},
		{107, "cx52", "shared", 16, 320, 32, "x86", 36.09, nil, euLocations},
		{22, "cpx11", "shared", 2, 40, 2, "x86", 5.18, []string{"ash", "hil", "sin"}, euLocations},
		{23, "cpx21", "shared", 3, 80, 4, "x86", 9.40, []string{"ash", "hil", "sin"}, euLocations},
		{24, "cpx31", "shared", 4, 160, 8, "x86", 16.90, []string{"ash", "hil", "sin"}, euLocations},
		{25, "cpx41", "shared", 8, 240, 16, "x86", 31.10, []string{"ash", "hil", "sin"}, euLocations},
		{26, "cpx51", "shared", 16, 360, 32, "x86", 64.90, []string{"ash", "hil", "sin"}, euLocations},
	}
}

// priceFactor makes the US and Singapore dearer than the EU, as Hetzner's prices are.
func priceFactor(loc string) float64 {
	switch loc {
	case "ash", "hil":
		return 1.2
	case "sin":
		return 1.25
	}
	return 1
}

func newCatalog() *catalog {
	c := &catalog{}
	c.locations = []schema.Location{
		{ID: 1, Name: "fsn1", Description: "Falkenstein DC Park 1", Country: "DE", City: "Falkenstein", Latitude: 50.47612, Longitude: 12.370071, NetworkZone: "eu-central"},
		{ID: 2, Name: "nbg1", Description: "Nuremberg DC Park 1", Country: "DE", City: "Nuremberg", Latitude: 49.452102, Longitude: 11.076665, NetworkZone: "eu-central"},
		{ID: 3, Name: "hel1", Description: "Helsinki DC Park 1", Country: "FI", City: "Helsinki", Latitude: 60.169855, Longitude: 24.938379, NetworkZone: "eu-central"},
		{ID: 4, Name: "ash", Description: "Ashburn, VA", Country: "US", City: "Ashburn, VA", Latitude: 39.045821, Longitude: -77.487073, NetworkZone: "us-east"},
		{ID: 5, Name: "hil", Description: "Hillsboro, OR", Country: "US", City: "Hillsboro, OR", Latitude: 45.54222, Longitude: -122.951924, NetworkZone: "us-west"},
		{ID: 6, Name: "sin", Description: "Singapore", Country: "SG", City: "Singapore", Latitude: 1.283333, Longitude: 103.833333, NetworkZone: "ap-southeast"},
	}
	locByName := map[string]schema.Location{}
	for _, l := range c.locations {
		locByName[l.Name] = l
	}
	const traffic = 21990232555520 // 20 TB
	for _, t := range serverTypeSpecs() {
		s := schema.ServerType{ID: t.id, Name: t.name, Description: upper(t.name),
			Category: category(t), Cores: t.cores, Memory: t.mem, Disk: t.disk, StorageType: string(hcloud.StorageTypeLocal), CPUType: t.cpu,
			Architecture: t.arch}
		for _, ln := range allLocations {
			if !slices.Contains(t.available, ln) && !slices.Contains(t.deprecated, ln) {
				continue
			}
			l := locByName[ln]
			m := t.monthly * priceFactor(ln)
			h := m / 730
			s.Prices = append(s.Prices, schema.PricingServerTypePrice{Location: ln,
				PriceHourly:       schema.Price{Net: fmt.Sprintf("%.4f", h), Gross: fmt.Sprintf("%.4f", h*1.19)},
				PriceMonthly:      schema.Price{Net: fmt.Sprintf("%.4f", m), Gross: fmt.Sprintf("%.4f", m*1.19)},
				IncludedTraffic:   traffic,
				PricePerTBTraffic: schema.Price{Net: "1.0000", Gross: "1.1900"}})
			// A retired location stays orderable until its date (serverTypeAt turns it off after).
			stl := schema.ServerTypeLocation{ID: l.ID, Name: ln, Available: true}
			if slices.Contains(t.deprecated, ln) {
				stl.Deprecation = &schema.DeprecationInfo{Announced: retiredAnnounced, UnavailableAfter: retiredUnavailableAfter}
			}
			s.Locations = append(s.Locations, stl)
		}
		if len(t.available) == 0 {
			// The legacy top-level fields mirror a deprecation that applies everywhere.
			//lint:ignore SA1019 the spec copy (2026-05-15) still has server_types[].deprecated; the legacy field mirrors deprecation
			s.Deprecated = true
			s.Deprecation = &schema.DeprecationInfo{Announced: retiredAnnounced, UnavailableAfter: retiredUnavailableAfter}
		}
		c.serverTypes = append(c.serverTypes, s)
	}
	// The recommended type per location: the smallest current general-purpose one.
	for i := range c.serverTypes {
		for j := range c.serverTypes[i].Locations {
			l := &c.serverTypes[i].Locations[j]
			switch c.serverTypes[i].Name {
			case "cx23":
				l.Recommended = true
			case "ccx13":
				l.Recommended = l.Name == "ash" || l.Name == "hil" || l.Name == "sin"
			}
		}
	}

	created := time.Date(2024, 4, 25, 12, 0, 0, 0, time.UTC)
	for _, im := range []struct {
		id                          int64
		name, desc, flav, ver, arch string
	}{
		{114690387, "debian-12", "Debian 12", "debian", "12", "x86"},
		{114690389, "debian-12", "Debian 12", "debian", "12", "arm"},
		{310557660, "debian-13", "Debian 13", "debian", "13", "x86"},
		{310557661, "debian-13", "Debian 13", "debian", "13", "arm"},
		{161547269, "ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04", "x86"},
		{161547270, "ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04", "arm"},
	} {
		name, ver := im.name, im.ver
		c.images = append(c.images, schema.Image{ID: im.id, Status: string(hcloud.ImageStatusAvailable), Type: string(hcloud.ImageTypeSystem),
			Name: &name, Description: im.desc, DiskSize: 5, Created: &created, OSFlavor: im.flav,
			OSVersion: &ver, Architecture: im.arch, RapidDeploy: true, Labels: map[string]string{}})
	}
	for i, dc := range []struct {
		id   int64
		name string
	}{{4, "fsn1-dc14"}, {2, "nbg1-dc3"}, {3, "hel1-dc2"}, {5, "ash-dc1"}, {6, "hil-dc1"}, {7, "sin-dc1"}} {
		var supported, available []int64
		for _, s := range c.serverTypes {
			for _, l := range s.Locations {
				if l.Name == c.locations[i].Name {
					supported = append(supported, s.ID)
					if l.Available {
						available = append(available, s.ID)
					}
				}
			}
		}
		//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
		c.datacenters = append(c.datacenters, schema.Datacenter{ID: dc.id, Name: dc.name,
			Description: c.locations[i].City + " " + dc.name[len(c.locations[i].Name)+1:], Location: c.locations[i],
			//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
			ServerTypes: &schema.DatacenterServerTypes{Supported: supported, Available: available, AvailableForMigration: available}})
	}
	return c
}

func category(t typeSpec) string {
	if t.cpu == "dedicated" {
		return "general_purpose"
	}
	return "cost_optimized"
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// gone reports whether a deprecation's date has been reached at now.
func gone(d *schema.DeprecationInfo, now time.Time) bool {
	return d != nil && !now.Before(d.UnavailableAfter)
}

// listedServerType is a server type as the list endpoint shows it at now: locations whose
// deprecation date has been reached are left out, and a type left with no location is not
// listed at all (ok false).
func listedServerType(s schema.ServerType, now time.Time) (schema.ServerType, bool) {
	out := s
	out.Locations = nil
	out.Prices = nil
	for _, l := range s.Locations {
		if gone(l.Deprecation, now) {
			continue
		}
		out.Locations = append(out.Locations, l)
		for _, p := range s.Prices {
			if p.Location == l.Name {
				out.Prices = append(out.Prices, p)
			}
		}
	}
	return out, len(out.Locations) > 0
}

// serverTypeAt is a server type as GET /server_types/{id} shows it at now: locations whose
// deprecation date has been reached are no longer available.
func serverTypeAt(s schema.ServerType, now time.Time) schema.ServerType {
	s.Locations = slices.Clone(s.Locations)
	for i := range s.Locations {
		if gone(s.Locations[i].Deprecation, now) {
			s.Locations[i].Available = false
		}
	}
	return s
}

// orderable says whether a server of type s can be created in location loc at now, and if not,
// why, in Hetzner's resource_unavailable terms.
func orderable(s schema.ServerType, loc string, now time.Time) (bool, string) {
	for _, l := range s.Locations {
		if l.Name != loc {
			continue
		}
		switch {
		case gone(l.Deprecation, now):
			return false, fmt.Sprintf("server type %s is deprecated in %s and no longer available for order", s.Name, loc)
		case !l.Available:
			return false, fmt.Sprintf("server type %s is currently not available in %s", s.Name, loc)
		}
		return true, ""
	}
	return false, fmt.Sprintf("server type %s is not available in %s", s.Name, loc)
}

func (c *catalog) serverType(ref schema.IDOrName) (schema.ServerType, bool) {
	for _, s := range c.serverTypes {
		if (ref.ID != 0 && s.ID == ref.ID) || (ref.Name != "" && s.Name == ref.Name) {
			return s, true
		}
	}
	return schema.ServerType{}, false
}

// image resolves an image by ID, or by name for the architecture arch (a name stands for one
// image per architecture, as on Hetzner, which picks the one fitting the server type).
func (c *catalog) image(ref schema.IDOrName, arch string) (schema.Image, bool) {
	for _, im := range c.images {
		if ref.ID != 0 && im.ID == ref.ID {
			return im, true
		}
		if ref.Name != "" && *im.Name == ref.Name && im.Architecture == arch {
			return im, true
		}
	}
	return schema.Image{}, false
}

// imageNamed reports whether any architecture has an image of that name.
func (c *catalog) imageNamed(name string) bool {
	return slices.ContainsFunc(c.images, func(im schema.Image) bool { return *im.Name == name })
}

// location resolves a location by name or ID and returns it with its data center.
//
//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
func (c *catalog) location(ref schema.IDOrName) (schema.Location, schema.Datacenter, bool) {
	for i, l := range c.locations {
		if (ref.ID != 0 && l.ID == ref.ID) || (ref.Name != "" && l.Name == ref.Name) {
			return l, c.datacenters[i], true
		}
	}
	//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
	return schema.Location{}, schema.Datacenter{}, false
}

//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
func (c *catalog) datacenter(ref schema.IDOrName) (schema.Datacenter, bool) {
	for _, d := range c.datacenters {
		if (ref.ID != 0 && d.ID == ref.ID) || (ref.Name != "" && d.Name == ref.Name) {
			return d, true
		}
	}
	//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
	return schema.Datacenter{}, false
}
