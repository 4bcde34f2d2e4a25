package hcloudsim

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// listCatalog answers a read-only list filtered by ?name= and paginated.
func listCatalog[T any](w http.ResponseWriter, r *http.Request, key string, items []T, name func(T) string) *apiError {
	var out []T
	for _, it := range items {
		if nameMatches(r, name(it)) {
			out = append(out, it)
		}
	}
	page, meta, aerr := pageOf(r, out)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, map[string]any{key: nonNil(page), "meta": meta})
	return nil
}

// getCatalog answers a read-only item by numeric ID.
func getCatalog[T any](w http.ResponseWriter, r *http.Request, key, what string, items []T, id func(T) int64) *apiError {
	want, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return errNotFound(what)
	}
	for _, it := range items {
		if id(it) == want {
			writeJSON(w, http.StatusOK, map[string]any{key: it})
			return nil
		}
	}
	return errNotFound(what)
}

// listServerTypes leaves out what the spec's DeprecationInfo says list endpoints stop returning
// once unavailable_after is reached: the locations retired by then, and types retired everywhere.
// GET /server_types/{id} still answers a retired type, with its deprecation.
func (s *Simulator) listServerTypes(w http.ResponseWriter, r *http.Request) *apiError {
	now := s.now()
	var types []schema.ServerType
	for _, t := range s.cat.serverTypes {
		if lt, ok := listedServerType(t, now); ok {
			types = append(types, lt)
		}
	}
	return listCatalog(w, r, "server_types", types, func(t schema.ServerType) string { return t.Name })
}

func (s *Simulator) getServerType(w http.ResponseWriter, r *http.Request) *apiError {
	now := s.now()
	types := make([]schema.ServerType, 0, len(s.cat.serverTypes))
	for _, t := range s.cat.serverTypes {
		types = append(types, serverTypeAt(t, now))
	}
	return getCatalog(w, r, "server_type", "server type", types, func(t schema.ServerType) int64 { return t.ID })
}

// listImages also honours ?architecture= and ?type=, which hcloud-go's GetByNameAndArchitecture
// sends.
func (s *Simulator) listImages(w http.ResponseWriter, r *http.Request) *apiError {
	q := r.URL.Query()
	var imgs []schema.Image
	for _, im := range s.cat.images {
		if a := q.Get("architecture"); a != "" && a != im.Architecture {
			continue
		}
		if t := q["type"]; len(t) > 0 && !slices.Contains(t, im.Type) {
			continue
		}
		imgs = append(imgs, im)
	}
	return listCatalog(w, r, "images", imgs, func(im schema.Image) string { return *im.Name })
}

func (s *Simulator) getImage(w http.ResponseWriter, r *http.Request) *apiError {
	return getCatalog(w, r, "image", "image", s.cat.images, func(im schema.Image) int64 { return im.ID })
}

func (s *Simulator) listLocations(w http.ResponseWriter, r *http.Request) *apiError {
	return listCatalog(w, r, "locations", s.cat.locations, func(l schema.Location) string { return l.Name })
}

func (s *Simulator) getLocation(w http.ResponseWriter, r *http.Request) *apiError {
	return getCatalog(w, r, "location", "location", s.cat.locations, func(l schema.Location) int64 { return l.ID })
}

// errDatacentersRemoved is what GET /datacenters answers once Hetzner removed it (see
// datacentersEndpointRemoved), or nil before.
func (s *Simulator) errDatacentersRemoved() *apiError {
	if s.now().Before(datacentersEndpointRemoved) {
		return nil
	}
	return &apiError{status: http.StatusGone, code: hcloud.ErrorDeprecatedAPIEndpoint, message: "API functionality was removed",
		details: schema.ErrorDetailsDeprecatedAPIEndpoint{Announcement: datacentersAnnouncement}}
}

// listDatacenters also names the recommended data center, which the spec requires.
func (s *Simulator) listDatacenters(w http.ResponseWriter, r *http.Request) *apiError {
	if aerr := s.errDatacentersRemoved(); aerr != nil {
		return aerr
	}
	//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
	var out []schema.Datacenter
	for _, d := range s.cat.datacenters {
		if nameMatches(r, d.Name) {
			out = append(out, d)
		}
	}
	page, meta, aerr := pageOf(r, out)
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, map[string]any{"datacenters": nonNil(page), "recommendation": s.cat.datacenters[0].ID, "meta": meta})
	return nil
}

func (s *Simulator) getDatacenter(w http.ResponseWriter, r *http.Request) *apiError {
	if aerr := s.errDatacentersRemoved(); aerr != nil {
		return aerr
	}
	//lint:ignore SA1019 simulates the deprecated datacenters of the spec copy (see catalog.datacenters)
	return getCatalog(w, r, "datacenter", "datacenter", s.cat.datacenters, func(d schema.Datacenter) int64 { return d.ID })
}
