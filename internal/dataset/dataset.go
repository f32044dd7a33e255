// Package dataset reads image classification datasets from disk: the
// Oxford-IIIT Pet official layout (images/ plus annotations/trainval.txt and
// test.txt) or a folder per class, and splits them reproducibly.
package dataset

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"petbreed/internal/imaging"
)

// Layouts Load recognises.
const (
	LayoutPets    = "oxford-iiit-pet" // images/, annotations/{trainval,test}.txt
	LayoutFolders = "folders"         // <class>/<image>, or train/<class>/ and test/<class>/
)

// Sample is one labelled image.
type Sample struct {
	Path  string // file path
	ID    string // image name without extension (Oxford: "Abyssinian_100")
	Label int    // index into Dataset.Classes
}

// Dataset is a labelled image collection with its official splits.
type Dataset struct {
	Root    string
	Layout  string
	Classes []string // readable class names, index = label
	// TrainVal is what training and validation draw from; Test is used once,
	// to evaluate the selected model. A folder-per-class dataset without
	// train/ and test/ folders has no test split (Test is empty).
	TrainVal []Sample
	Test     []Sample
}

// Load reads the dataset at root, detecting its layout.
func Load(root string) (*Dataset, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dataset: %s is not a directory", root)
	}
	if isFile(filepath.Join(root, "annotations", "trainval.txt")) {
		return loadPets(root)
	}
	return loadFolders(root)
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// ReadableName turns a breed's file-name form into words:
// "american_bulldog" → "American Bulldog", "Abyssinian" → "Abyssinian".
func ReadableName(s string) string {
	words := strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' || r == ' ' })
	for i, w := range words {
		r := []rune(w)
		r[0] = unicode.ToUpper(r[0])
		words[i] = string(r)
	}
	return strings.Join(words, " ")
}

// petsLine is one parsed annotation line: "Image CLASS-ID SPECIES BREED-ID".
type petsLine struct {
	id      string
	classID int
}

func readPetsList(path string) ([]petsLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	var out []petsLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			return nil, fmt.Errorf("dataset: %s:%d: want \"Image CLASS-ID SPECIES BREED-ID\", got %q", path, n, line)
		}
		id, err := strconv.Atoi(fields[1])
		if err != nil || id < 1 {
			return nil, fmt.Errorf("dataset: %s:%d: bad class id %q", path, n, fields[1])
		}
		out = append(out, petsLine{id: fields[0], classID: id})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", path, err)
	}
	return out, nil
}

// breedOf is the breed part of an Oxford image name: "american_bulldog_100"
// → "american_bulldog".
func breedOf(id string) string {
	i := strings.LastIndexByte(id, '_')
	if i <= 0 {
		return id
	}
	if _, err := strconv.Atoi(id[i+1:]); err != nil {
		return id
	}
	return id[:i]
}

func loadPets(root string) (*Dataset, error) {
	ann := filepath.Join(root, "annotations")
	trainval, err := readPetsList(filepath.Join(ann, "trainval.txt"))
	if err != nil {
		return nil, err
	}
	var test []petsLine
	if isFile(filepath.Join(ann, "test.txt")) {
		if test, err = readPetsList(filepath.Join(ann, "test.txt")); err != nil {
			return nil, err
		}
	}
	// Class ids keep their official values (1..37, or a subset); labels are
	// those ids in order, made contiguous. Names come from the image names.
	names := map[int]string{}
	for _, l := range append(append([]petsLine{}, trainval...), test...) {
		b := breedOf(l.id)
		if prev, ok := names[l.classID]; ok && prev != b {
			return nil, fmt.Errorf("dataset: class id %d names both %q and %q", l.classID, prev, b)
		}
		names[l.classID] = b
	}
	ids := make([]int, 0, len(names))
	for id := range names {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	if len(ids) < 2 {
		return nil, fmt.Errorf("dataset: %s has %d classes; need at least 2", root, len(ids))
	}
	label := map[int]int{}
	ds := &Dataset{Root: root, Layout: LayoutPets}
	for i, id := range ids {
		label[id] = i
		ds.Classes = append(ds.Classes, ReadableName(names[id]))
	}
	images := filepath.Join(root, "images")
	var missing []string
	conv := func(lines []petsLine) []Sample {
		out := make([]Sample, 0, len(lines))
		for _, l := range lines {
			p := filepath.Join(images, l.id+".jpg")
			if !isFile(p) {
				missing = append(missing, l.id)
				continue
			}
			out = append(out, Sample{Path: p, ID: l.id, Label: label[l.classID]})
		}
		return out
	}
	ds.TrainVal, ds.Test = conv(trainval), conv(test)
	if len(missing) > 0 {
		return nil, fmt.Errorf("dataset: %d annotated images missing from %s (first: %s.jpg)", len(missing), images, missing[0])
	}
	return ds, nil
}

func loadFolders(root string) (*Dataset, error) {
	ds := &Dataset{Root: root, Layout: LayoutFolders}
	trainDir, testDir := filepath.Join(root, "train"), filepath.Join(root, "test")
	if st, err := os.Stat(filepath.Join(root, "trainval")); err == nil && st.IsDir() {
		trainDir = filepath.Join(root, "trainval")
	}
	if dirExists(trainDir) && dirExists(testDir) {
		classes, err := classDirs(trainDir)
		if err != nil {
			return nil, err
		}
		ds.Classes = readable(classes)
		if ds.TrainVal, err = scanClasses(trainDir, classes); err != nil {
			return nil, err
		}
		if ds.Test, err = scanClasses(testDir, classes); err != nil {
			return nil, err
		}
		return ds, nil
	}
	classes, err := classDirs(root)
	if err != nil {
		return nil, err
	}
	ds.Classes = readable(classes)
	if ds.TrainVal, err = scanClasses(root, classes); err != nil {
		return nil, err
	}
	return ds, nil
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func readable(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = ReadableName(n)
	}
	return out
}

// classDirs lists the class folders of dir, sorted (hidden ones skipped).
func classDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("dataset: %s is neither the Oxford-IIIT Pet layout (annotations/trainval.txt) nor a folder per class (found %d class folders)", dir, len(out))
	}
	return out, nil
}

// scanClasses lists the images under dir/<class>/ for each class, recursively.
func scanClasses(dir string, classes []string) ([]Sample, error) {
	var out []Sample
	for label, c := range classes {
		n := 0
		err := filepath.WalkDir(filepath.Join(dir, c), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasPrefix(d.Name(), ".") && p != filepath.Join(dir, c) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && imaging.HasImageExt(p) {
				out = append(out, Sample{Path: p, ID: strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)), Label: label})
				n++
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dataset: class %q has no folder in %s", c, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		if n == 0 {
			return nil, fmt.Errorf("dataset: class folder %s has no images", filepath.Join(dir, c))
		}
	}
	return out, nil
}
