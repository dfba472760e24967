package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// assets are the console's static files: one style sheet, one small script (the copy buttons)
// and the icon. Pages link them with a version (the hash of the content), so browsers may cache
// them for good and still never use a stale file after an upgrade.
type assets struct {
	CSS, JS, Icon string // the URLs pages link
	files         map[string]asset
}

type asset struct {
	body        []byte
	contentType string
	version     string
}

var assetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
}

func loadAssets(dir fs.FS) (assets, error) {
	as := assets{files: map[string]asset{}}
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		return as, err
	}
	for _, e := range entries {
		ct, ok := assetTypes[path.Ext(e.Name())]
		if !ok {
			return as, fmt.Errorf("console: static file %s has no known type", e.Name())
		}
		b, err := fs.ReadFile(dir, e.Name())
		if err != nil {
			return as, err
		}
		sum := sha256.Sum256(b)
		as.files[e.Name()] = asset{body: b, contentType: ct, version: hex.EncodeToString(sum[:6])}
	}
	url := func(name string) string {
		return Prefix + "/static/" + name + "?v=" + as.files[name].version
	}
	as.CSS, as.JS, as.Icon = url("console.css"), url("console.js"), url("icon.svg")
	return as, nil
}

// static serves an embedded file. With the current version in ?v= it may be cached for a year;
// without it, it must be revalidated (by its ETag).
func (h *Console) static(c *gin.Context) {
	a, ok := h.assets.files[c.Param("file")]
	if !ok {
		h.fail(c, http.StatusNotFound, "There is no such file.")
		return
	}
	etag := `"` + a.version + `"`
	c.Header("ETag", etag)
	if c.Query("v") == a.version {
		c.Header("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		c.Header("Cache-Control", "no-cache")
	}
	if strings.Contains(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, a.contentType, a.body)
}

// pageNames are the templates under templates/ that are pages; layout.html frames each of them.
var pageNames = []string{"sign-in", "connections", "connection", "confirm", "audit", "message"}

// parsePages parses each page together with the layout and the shared parts.
func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parsing the %s page: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// funcs are the few helpers templates use; everything else is prepared in Go (view.go).
var funcs = template.FuncMap{
	"roleLabel":   roleLabel,
	"utc":         formatTime,
	"impactTable": func(title, why string, rows []api.ImpactWorkload) impactTable { return impactTable{title, why, rows} },
}

// impactTable is one list of an impact report (newly refused or newly admitted workloads).
type impactTable struct {
	Title, Why string
	Rows       []api.ImpactWorkload
}

// roleLabel is how a role is shown.
func roleLabel(role string) string {
	switch role {
	case api.RoleSecurityAdmin:
		return "security admin"
	case api.RoleDevOpsAdmin:
		return "devops admin"
	}
	return role
}
