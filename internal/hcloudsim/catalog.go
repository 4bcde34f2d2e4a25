package hcloudsim

import (
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// catalog is the read-only part of the API: a few real server types, images, locations and
// data centers with the IDs Hetzner uses for them.
type catalog struct {
	serverTypes []schema.ServerType
	images      []schema.Image
	locations   []schema.Location
	datacenters []schema.Datacenter
}

func newCatalog() *catalog {
	c := &catalog{}
	c.locations = []schema.Location{
		{ID: 1, Name: "fsn1", Description: "Falkenstein DC Park 1", Country: "DE", City: "Falkenstein", Latitude: 50.47612, Longitude: 12.370071, NetworkZone: "eu-central"},
		{ID: 2, Name: "nbg1", Description: "Nuremberg DC Park 1", Country: "DE", City: "Nuremberg", Latitude: 49.452102, Longitude: 11.076665, NetworkZone: "eu-central"},
		{ID: 3, Name: "hel1", Description: "Helsinki DC Park 1", Country: "FI", City: "Helsinki", Latitude: 60.169855, Longitude: 24.938379, NetworkZone: "eu-central"},
	}
	type st struct {
		id              int64
		name, desc, cpu string
		cores, disk     int
		mem             float32
		hourly, monthly string
	}
	for _, t := range []st{
		{22, "cpx11", "CPX 11", "shared", 2, 40, 2, "0.0080", "4.99"},
		{104, "cx22", "CX22", "shared", 2, 40, 4, "0.0060", "3.79"},
		{105, "cx32", "CX32", "shared", 4, 80, 8, "0.0110", "6.80"},
		{106, "cx42", "CX42", "shared", 8, 160, 16, "0.0270", "16.40"},
	} {
		s := schema.ServerType{ID: t.id, Name: t.name, Description: t.desc, Category: "shared_vcpu",
			Cores: t.cores, Memory: t.mem, Disk: t.disk, StorageType: "local", CPUType: t.cpu,
			Architecture: "x86", IncludedTraffic: 21990232555520}
		for _, l := range c.locations {
			s.Prices = append(s.Prices, schema.PricingServerTypePrice{Location: l.Name,
				PriceHourly:       schema.Price{Net: t.hourly, Gross: t.hourly},
				PriceMonthly:      schema.Price{Net: t.monthly, Gross: t.monthly},
				IncludedTraffic:   21990232555520,
				PricePerTBTraffic: schema.Price{Net: "1.00", Gross: "1.19"}})
			s.Locations = append(s.Locations, schema.ServerTypeLocation{ID: l.ID, Name: l.Name, Recommended: l.Name == "fsn1", Available: true})
		}
		c.serverTypes = append(c.serverTypes, s)
	}
	created := time.Date(2024, 4, 25, 12, 0, 0, 0, time.UTC)
	for _, im := range []struct {
		id                    int64
		name, desc, flav, ver string
	}{
		{114690387, "debian-12", "Debian 12", "debian", "12"},
		{161547269, "ubuntu-24.04", "Ubuntu 24.04", "ubuntu", "24.04"},
	} {
		name, ver := im.name, im.ver
		c.images = append(c.images, schema.Image{ID: im.id, Status: "available", Type: "system",
			Name: &name, Description: im.desc, DiskSize: 5, Created: &created, OSFlavor: im.flav,
			OSVersion: &ver, Architecture: "x86", RapidDeploy: true, Labels: map[string]string{}})
	}
	ids := make([]int64, 0, len(c.serverTypes))
	for _, s := range c.serverTypes {
		ids = append(ids, s.ID)
	}
	for i, dc := range []struct {
		id   int64
		name string
	}{{4, "fsn1-dc14"}, {2, "nbg1-dc3"}, {3, "hel1-dc2"}} {
		c.datacenters = append(c.datacenters, schema.Datacenter{ID: dc.id, Name: dc.name,
			Description: c.locations[i].City + " " + dc.name[5:], Location: c.locations[i],
			ServerTypes: &schema.DatacenterServerTypes{Supported: ids, Available: ids, AvailableForMigration: ids}})
	}
	return c
}

func (c *catalog) serverType(ref schema.IDOrName) (schema.ServerType, bool) {
	for _, s := range c.serverTypes {
		if (ref.ID != 0 && s.ID == ref.ID) || (ref.Name != "" && s.Name == ref.Name) {
			return s, true
		}
	}
	return schema.ServerType{}, false
}

func (c *catalog) image(ref schema.IDOrName) (schema.Image, bool) {
	for _, im := range c.images {
		if (ref.ID != 0 && im.ID == ref.ID) || (ref.Name != "" && *im.Name == ref.Name) {
			return im, true
		}
	}
	return schema.Image{}, false
}

// location resolves a location by name or ID and returns it with its data center.
func (c *catalog) location(ref schema.IDOrName) (schema.Location, schema.Datacenter, bool) {
	for i, l := range c.locations {
		if (ref.ID != 0 && l.ID == ref.ID) || (ref.Name != "" && l.Name == ref.Name) {
			return l, c.datacenters[i], true
		}
	}
	return schema.Location{}, schema.Datacenter{}, false
}

func (c *catalog) datacenter(ref schema.IDOrName) (schema.Datacenter, bool) {
	for _, d := range c.datacenters {
		if (ref.ID != 0 && d.ID == ref.ID) || (ref.Name != "" && d.Name == ref.Name) {
			return d, true
		}
	}
	return schema.Datacenter{}, false
}
