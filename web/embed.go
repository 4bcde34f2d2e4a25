// Package web holds the static assets the app serves itself: CSS, htmx and a small script.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sort"
)

//go:embed static
var files embed.FS

// Static is the static/ folder, served at /static/.
var Static, _ = fs.Sub(files, "static")

// Hash is a short digest of every asset, used to bust caches when they change.
var Hash = func() string {
	h := sha256.New()
	var names []string
	_ = fs.WalkDir(Static, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(Static, n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}()
