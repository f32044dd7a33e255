package pull

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"petbreed/internal/atomicfile"
)

// MarkerPrefix starts the name of the file Pets leaves in its directory once
// an archive is fully extracted: MarkerPrefix + archive name, holding the
// archive's checksums.
const MarkerPrefix = ".petbreed-extracted-"

// Pets downloads the Oxford-IIIT Pet archives (PetsAnnotations, PetsImages,
// or their replacements in opt.Artifacts) into dir and extracts them there (dir/images/, dir/annotations/), skipping
// what is already done: an archive whose marker file records the pinned
// checksum, and whose folder is still there, is neither downloaded nor
// extracted again. The archives are kept beside the extracted folders.
func Pets(ctx context.Context, dir string, opt Options) error {
	if opt.Client == nil {
		c := newClient()
		defer c.CloseIdleConnections()
		opt.Client = c
	}
	for _, a := range []Artifact{PetsAnnotations(), PetsImages()} {
		if err := fetchAndExtract(ctx, opt.artifact(a), dir, opt); err != nil {
			return err
		}
	}
	return nil
}

func fetchAndExtract(ctx context.Context, a Artifact, dir string, opt Options) error {
	if err := a.Validate(); err != nil {
		return err
	}
	prog := newProgress(opt.Progress, a.Name, opt.withDefaults().ProgressInterval)
	marker := filepath.Join(dir, MarkerPrefix+a.Name)
	want := markerContent(a)
	top := filepath.Join(dir, archiveFolder(a.Name))
	if got, err := os.ReadFile(marker); err == nil && string(got) == want && isDir(top) {
		prog.logf("already extracted into %s", top)
		return nil
	}
	archive, err := Download(ctx, a, dir, opt)
	if err != nil {
		return err
	}
	prog.logf("extracting into %s", dir)
	n, err := ExtractTarGz(ctx, archive, dir, opt.Extract)
	if err != nil {
		return err
	}
	// The marker must not outlive a crash that loses the files it vouches for.
	syncFilesystems()
	if err := atomicfile.WriteFile(marker, []byte(want), 0o644); err != nil {
		return err
	}
	prog.logf("extracted %d files", n)
	return nil
}

// Backbone downloads BackboneFP32 (or its replacement in opt.Artifacts) into dir and returns its path.
func Backbone(ctx context.Context, dir string, opt Options) (string, error) {
	return Download(ctx, opt.artifact(BackboneFP32()), dir, opt)
}

// markerContent identifies the extracted archive by its pinned checksums.
func markerContent(a Artifact) string {
	var b strings.Builder
	fmt.Fprintf(&b, "archive %s\n", a.Name)
	if a.MD5 != "" {
		fmt.Fprintf(&b, "md5 %s\n", strings.ToLower(a.MD5))
	}
	if a.SHA256 != "" {
		fmt.Fprintf(&b, "sha256 %s\n", strings.ToLower(a.SHA256))
	}
	return b.String()
}

// archiveFolder is the folder an archive is expected to create:
// "images.tar.gz" -> "images".
func archiveFolder(name string) string {
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if s, ok := strings.CutSuffix(name, ext); ok {
			return s
		}
	}
	return name
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
