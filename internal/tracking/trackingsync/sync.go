// Package trackingsync copies runs from one tracking backend to another (a
// file store to an MLflow server, a server to a file store, or any two), so
// a run made offline can be published later, or a server's runs kept
// locally.
//
// A run is copied whole and in MLflow's terms: into the experiment of the
// same name (created if needed), with its name, params, dataset inputs
// (tracking.InputLogger), every metric's full history (steps and
// timestamps), its tags, status, start and end times, and every artifact
// byte for byte, streamed through a temporary file, never held in memory. With Options.Registry the registered versions made from the
// copied runs follow, as new versions of the same registered model at the
// copy, and the aliases pointing at them.
//
// A sync is idempotent. Each copy carries the tag petbreed.sync.origin, the
// id of the run it is a copy of (the original's, through copies of copies),
// and petbreed.sync.complete once everything was logged; a run whose origin
// is already in the destination, as a complete copy or as the original
// itself, is not copied again, so syncing back and forth copies each run
// once. A copy that failed midway is ended FAILED and tagged
// petbreed.sync.abandoned, and the next sync makes a new one. Runs still
// RUNNING are skipped: only finished, failed and killed runs are copied.
//
// It reads and writes only through tracking's interfaces. A destination
// that implements tracking.TimedTracker and tracking.TimedEnder keeps the
// runs' own start and end times; another gets the time of the copy (and
// the result says so). Artifacts go through the destination run's
// LogArtifactFile.
package trackingsync

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"

	"petbreed/internal/tracking"
)

// Tags a copy carries.
const (
	TagOrigin    = "petbreed.sync.origin"    // id of the original run
	TagFrom      = "petbreed.sync.from"      // the tracking URI it was copied from
	TagComplete  = "petbreed.sync.complete"  // "true" once all was logged
	TagAbandoned = "petbreed.sync.abandoned" // "true" on a copy that failed midway
)

// notCopied are tags a copy does not take from its source: the run name
// travels as the name, the process tags and the REST client's request id
// (mlflowrest.TagRequestID, which finds a create whose answer was lost) are
// the writer's own, and the sync's own are set by the sync.
var notCopied = map[string]bool{
	tracking.TagRunName: true, tracking.TagPID: true, tracking.TagHost: true, tracking.TagProcStart: true,
	"petbreed.request_id": true,
	TagOrigin:             true, TagFrom: true, TagComplete: true, TagAbandoned: true,
}

// Source is what a sync reads runs from.
type Source interface {
	URI() string
	tracking.ExperimentReader
	tracking.RunReader
	tracking.ArtifactReader
}

// Dest is what a sync writes runs to; it reads the destination's runs to
// find what was copied before.
type Dest interface {
	tracking.Tracker
	tracking.ExperimentReader
	tracking.RunReader
}

// artifactFileWriter is a run writer that uploads an artifact from a file
// (streamed, not read into memory): *tracking.Run and the REST client.
type artifactFileWriter interface {
	LogArtifactFile(relPath, srcPath string) error
}

// Options choose what a sync copies.
type Options struct {
	// Experiments are the names of the experiments to copy; none means
	// every experiment that has runs.
	Experiments []string
	// Runs are the ids of the runs to copy; none means every run of the
	// experiments. A run not found is an error.
	Runs []string
	// Registry also copies the registered versions made from the copied
	// runs, and the aliases that point to them (moving the destination's
	// alias to the copy of the version the source's alias names).
	Registry bool
	// DryRun reports what would be copied and writes nothing.
	DryRun bool
	// TempDir holds each artifact while it is copied ("" = os.TempDir()).
	TempDir string
	// Progress, when set, is told each run as it is copied or skipped.
	Progress func(RunResult)
}

// RunResult is what happened to one source run.
type RunResult struct {
	Experiment string // name
	From       string // source run id
	Name       string
	To         string // the destination's run: the new copy, or the one already there
	Copied     bool   // false: skipped (Reason says why)
	Reason     string
	Params     int   // params copied
	Inputs     int   // dataset inputs copied
	Points     int   // metric values copied, all histories together
	Artifacts  int   // artifact files copied
	Bytes      int64 // their bytes
}

// VersionResult is one registered version copied or found.
type VersionResult struct {
	Model    string
	From, To int // version numbers in the source and the destination
	Copied   bool
}

// AliasResult is one alias set in the destination.
type AliasResult struct {
	Model, Alias string
	Was, Now     int // destination version before (0: none) and after
}

// Result is what a sync did.
type Result struct {
	Runs     []RunResult
	Versions []VersionResult
	Aliases  []AliasResult
	Warnings []string
}

// Copied counts the runs copied.
func (r *Result) Copied() int {
	n := 0
	for _, x := range r.Runs {
		if x.Copied {
			n++
		}
	}
	return n
}

// Sync copies runs from one backend to another as the package comment
// says. It stops at the first run it cannot copy (that copy is ended
// FAILED and tagged abandoned) and returns what it did so far with the
// error, which names the run and what was not copied.
func Sync(ctx context.Context, from Source, to Dest, opt Options) (*Result, error) {
	s := &syncer{from: from, to: to, opt: opt, res: &Result{}, runMap: map[string]string{}}
	if opt.Registry {
		var ok bool
		if s.regFrom, ok = from.(tracking.RegistryReader); !ok {
			return nil, fmt.Errorf("sync: %s has no model registry", from.URI())
		}
		if s.regTo, ok = to.(registryDest); !ok {
			return nil, fmt.Errorf("sync: %s cannot register models", to.URI())
		}
	}
	if _, ok := to.(tracking.TimedTracker); !ok {
		s.res.Warnings = append(s.res.Warnings, to.URI()+" cannot keep a run's start time: copies start at the time of the sync")
	}
	if err := s.runs(ctx); err != nil {
		return s.res, err
	}
	if opt.Registry {
		if err := s.registry(ctx); err != nil {
			return s.res, err
		}
	}
	return s.res, nil
}

type registryDest interface {
	tracking.RegistryReader
	tracking.RegistryWriter
}

type syncer struct {
	from    Source
	to      Dest
	opt     Options
	res     *Result
	regFrom tracking.RegistryReader
	regTo   registryDest
	runMap  map[string]string // source run id -> destination run id
}

func (s *syncer) runs(ctx context.Context) error {
	exps, err := s.from.Experiments()
	if err != nil {
		return fmt.Errorf("sync: read %s: %w", s.from.URI(), err)
	}
	if len(s.opt.Experiments) > 0 {
		byName := map[string]tracking.ExperimentInfo{}
		var names []string
		for _, e := range exps {
			byName[e.Name] = e
			names = append(names, e.Name)
		}
		exps = exps[:0:0]
		for _, n := range s.opt.Experiments {
			e, ok := byName[n]
			if !ok {
				return fmt.Errorf("sync: no experiment %q in %s (have: %s)", n, s.from.URI(), strings.Join(names, ", "))
			}
			exps = append(exps, e)
		}
	}
	want := map[string]bool{}
	for _, id := range s.opt.Runs {
		want[id] = true
	}
	found := map[string]bool{}
	// Oldest experiment first, so the destination creates them in the same order.
	for i := len(exps) - 1; i >= 0; i-- {
		e := exps[i]
		runs, err := s.from.Runs(e.ID)
		if err != nil {
			return fmt.Errorf("sync: read experiment %q of %s: %w", e.Name, s.from.URI(), err)
		}
		var todo []tracking.RunInfo
		for j := len(runs) - 1; j >= 0; j-- { // oldest first
			r := runs[j]
			if len(want) > 0 && !want[r.ID] {
				continue
			}
			found[r.ID] = true
			todo = append(todo, r)
		}
		if len(todo) == 0 {
			continue
		}
		if err := s.experiment(ctx, e.Name, todo); err != nil {
			return err
		}
	}
	var missing []string
	for _, id := range s.opt.Runs {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("sync: no run %s in %s", strings.Join(missing, ", "), s.from.URI())
	}
	return nil
}

// destIndex is what the destination's experiment already holds.
type destIndex struct {
	complete  map[string]string // origin -> complete copy's id
	ids       map[string]bool   // every run id there
	abandoned []tracking.RunInfo
}

func (s *syncer) index(expID string) (destIndex, error) {
	idx := destIndex{complete: map[string]string{}, ids: map[string]bool{}}
	if expID == "" {
		return idx, nil
	}
	runs, err := s.to.Runs(expID)
	if err != nil {
		return idx, fmt.Errorf("sync: read %s: %w", s.to.URI(), err)
	}
	for _, r := range runs {
		idx.ids[r.ID] = true
		o := r.Tags[TagOrigin]
		switch {
		case o == "":
		case r.Tags[TagComplete] == "true":
			if _, ok := idx.complete[o]; !ok {
				idx.complete[o] = r.ID
			}
		case r.Tags[TagAbandoned] != "true":
			idx.abandoned = append(idx.abandoned, r)
		}
	}
	return idx, nil
}

func (s *syncer) experiment(ctx context.Context, name string, runs []tracking.RunInfo) error {
	expID, err := s.destExperiment(name)
	if err != nil {
		return err
	}
	idx, err := s.index(expID)
	if err != nil {
		return err
	}
	if !s.opt.DryRun {
		s.abandon(idx.abandoned)
	}
	for _, r := range runs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		rr := RunResult{Experiment: name, From: r.ID, Name: r.Name}
		origin := origin(r)
		switch {
		case idx.complete[origin] != "":
			rr.To, rr.Reason = idx.complete[origin], "already there"
		case idx.ids[origin]:
			rr.To, rr.Reason = origin, "the original is there"
		case !r.Status.Terminal():
			rr.Reason = "still " + r.Status.String()
		case s.opt.DryRun:
			rr.Copied, rr.Reason = true, "dry run"
		default:
			if err := s.copyRun(ctx, expID, &r, &rr); err != nil {
				s.report(rr)
				return err
			}
			rr.Copied = true
		}
		if rr.To != "" {
			s.runMap[r.ID] = rr.To
		}
		s.report(rr)
	}
	return nil
}

func (s *syncer) report(rr RunResult) {
	s.res.Runs = append(s.res.Runs, rr)
	if s.opt.Progress != nil {
		s.opt.Progress(rr)
	}
}

// destExperiment finds (or, unless a dry run, creates) the destination's
// experiment; "" in a dry run when it does not exist yet.
func (s *syncer) destExperiment(name string) (string, error) {
	if !s.opt.DryRun {
		id, err := s.to.Experiment(name)
		if err != nil {
			return "", fmt.Errorf("sync: experiment %q in %s: %w", name, s.to.URI(), err)
		}
		return id, nil
	}
	exps, err := s.to.Experiments()
	if err != nil {
		return "", fmt.Errorf("sync: read %s: %w", s.to.URI(), err)
	}
	for _, e := range exps {
		if e.Name == name {
			return e.ID, nil
		}
	}
	return "", nil
}

// abandon ends the copies an interrupted sync left RUNNING, so they are not
// taken for runs in progress; a new copy replaces them.
func (s *syncer) abandon(runs []tracking.RunInfo) {
	for _, r := range runs {
		w, err := s.to.OpenRun(r.ID)
		if err == nil {
			err = w.SetTags(map[string]string{TagAbandoned: "true"})
		}
		if err == nil && !r.Status.Terminal() {
			err = w.End(tracking.Failed)
		}
		msg := "an earlier sync's incomplete copy " + r.ID + " of " + r.Tags[TagOrigin] + " was marked abandoned; it is copied again"
		if err != nil && !errors.Is(err, tracking.ErrRunEnded) {
			msg = "an earlier sync's incomplete copy " + r.ID + " could not be marked abandoned: " + err.Error()
		}
		s.res.Warnings = append(s.res.Warnings, msg)
	}
}

// origin is the id of the run r is a copy of, or r's own.
func origin(r tracking.RunInfo) string {
	if o := r.Tags[TagOrigin]; o != "" {
		return o
	}
	return r.ID
}

func (s *syncer) copyRun(ctx context.Context, expID string, r *tracking.RunInfo, rr *RunResult) (err error) {
	tags := map[string]string{}
	for k, v := range r.Tags {
		if !notCopied[k] {
			tags[k] = v
		}
	}
	tags[TagOrigin] = origin(*r)
	tags[TagFrom] = s.from.URI()
	var w tracking.RunWriter
	if tt, ok := s.to.(tracking.TimedTracker); ok {
		w, err = tt.CreateRunAt(expID, r.Name, tags, r.Start)
	} else {
		w, err = s.to.CreateRun(expID, r.Name, tags)
	}
	if err != nil {
		return fmt.Errorf("sync: run %s (%s): create its copy in %s: %w", r.ID, r.Name, s.to.URI(), err)
	}
	rr.To = w.RunID()
	defer func() {
		if err == nil {
			return
		}
		// Whatever was logged stays, marked, so the next sync copies the run again.
		_ = w.SetTags(map[string]string{TagAbandoned: "true"})
		_ = w.End(tracking.Failed)
		err = fmt.Errorf("sync: run %s (%s): %w; its copy %s in %s is marked FAILED and %s, and the next sync copies the run again",
			r.ID, r.Name, err, w.RunID(), s.to.URI(), TagAbandoned)
	}()
	if len(r.Params) > 0 {
		if err := w.LogParams(r.Params); err != nil {
			return fmt.Errorf("params not copied: %w", err)
		}
		rr.Params = len(r.Params)
	}
	if len(r.Inputs) > 0 {
		il, ok := w.(tracking.InputLogger)
		if !ok {
			return fmt.Errorf("dataset inputs not copied: %s cannot record them", s.to.URI())
		}
		if err := il.LogInputs(r.Inputs); err != nil {
			return fmt.Errorf("dataset inputs not copied: %w", err)
		}
		rr.Inputs = len(r.Inputs)
	}
	if rr.Points, err = s.copyMetrics(r, w); err != nil {
		return err
	}
	if err := s.copyArtifacts(ctx, r.ID, "", w, rr); err != nil {
		return err
	}
	if err := s.checkArtifacts(r.ID, w.RunID()); err != nil {
		return err
	}
	if err := w.SetTags(map[string]string{TagComplete: "true"}); err != nil {
		return fmt.Errorf("tag %s not set: %w", TagComplete, err)
	}
	if te, ok := w.(tracking.TimedEnder); ok && !r.End.IsZero() {
		err = te.EndAt(r.Status, r.End)
	} else {
		err = w.End(r.Status)
	}
	if err != nil {
		return fmt.Errorf("status %s not set: %w", r.Status, err)
	}
	return nil
}

// copyMetrics copies every metric's whole history, in batches of at most
// tracking.MaxMetricsPerBatch values.
func (s *syncer) copyMetrics(r *tracking.RunInfo, w tracking.RunWriter) (int, error) {
	keys := make([]string, 0, len(r.Metrics))
	for k := range r.Metrics {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := 0
	var batch []tracking.Metric
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.LogMetrics(batch); err != nil {
			return fmt.Errorf("metrics not copied (%d of the values before this batch were): %w", n, err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for _, k := range keys {
		h, err := s.from.MetricHistory(r.ID, k)
		if err != nil {
			return n, fmt.Errorf("read metric %q: %w", k, err)
		}
		for _, p := range h {
			batch = append(batch, tracking.Metric{Key: k, Value: p.Value, Step: p.Step, Timestamp: p.Timestamp})
			if len(batch) == tracking.MaxMetricsPerBatch {
				if err := flush(); err != nil {
					return n, err
				}
			}
		}
	}
	return n, flush()
}

func (s *syncer) copyArtifacts(ctx context.Context, runID, dir string, w tracking.RunWriter, rr *RunResult) error {
	ents, err := s.from.ListArtifacts(runID, dir)
	if err != nil {
		return fmt.Errorf("list artifacts %q: %w", dir, err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir {
			if err := s.copyArtifacts(ctx, runID, e.Path, w, rr); err != nil {
				return err
			}
			continue
		}
		n, err := s.copyArtifact(runID, e, w)
		if err != nil {
			return fmt.Errorf("artifact %s not copied (%d files before it were): %w", e.Path, rr.Artifacts, err)
		}
		rr.Artifacts++
		rr.Bytes += n
	}
	return nil
}

// copyArtifact streams one artifact through a temporary file to the
// destination, checking that it has the size the source's listing gives.
func (s *syncer) copyArtifact(runID string, e tracking.ArtifactEntry, w tracking.RunWriter) (int64, error) {
	fw, ok := w.(artifactFileWriter)
	if !ok {
		return 0, fmt.Errorf("%s cannot upload artifact files", s.to.URI())
	}
	src, err := s.from.OpenArtifact(runID, e.Path)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(s.opt.TempDir, "petbreed-sync-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("read: %w", err)
	}
	if e.Size > 0 && n != e.Size {
		return n, fmt.Errorf("read %d bytes, the listing says %d", n, e.Size)
	}
	if err := fw.LogArtifactFile(e.Path, tmp.Name()); err != nil {
		return n, err
	}
	return n, nil
}

// checkArtifacts compares the copy's artifact listing with the source's
// (paths and sizes), when the destination lists artifacts.
func (s *syncer) checkArtifacts(fromID, toID string) error {
	ar, ok := s.to.(tracking.ArtifactReader)
	if !ok {
		return nil
	}
	want, err := listAll(s.from, fromID, "")
	if err != nil {
		return fmt.Errorf("list artifacts: %w", err)
	}
	got, err := listAll(ar, toID, "")
	if err != nil {
		return fmt.Errorf("list the copy's artifacts: %w", err)
	}
	for p, n := range want {
		if m, ok := got[p]; !ok {
			return fmt.Errorf("artifact %s is missing from the copy", p)
		} else if m != n {
			return fmt.Errorf("artifact %s has %d bytes in the copy, %d in the source", p, m, n)
		}
	}
	return nil
}

func listAll(ar tracking.ArtifactReader, runID, dir string) (map[string]int64, error) {
	out := map[string]int64{}
	ents, err := ar.ListArtifacts(runID, dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir {
			out[e.Path] = e.Size
			continue
		}
		sub, err := listAll(ar, runID, e.Path)
		if err != nil {
			return nil, err
		}
		for p, n := range sub {
			out[p] = n
		}
	}
	return out, nil
}

// registry copies the versions made from the runs this sync copied or
// found, and the aliases naming them.
func (s *syncer) registry(ctx context.Context) error {
	names, err := s.regFrom.RegisteredModels()
	if err != nil {
		return fmt.Errorf("sync: read the registry of %s: %w", s.from.URI(), err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		if err := s.model(name); err != nil {
			return fmt.Errorf("sync: registered model %q: %w", name, err)
		}
	}
	return nil
}

func (s *syncer) model(name string) error {
	versions, err := s.regFrom.ModelVersions(name)
	if err != nil {
		return err
	}
	destVersions, err := s.regTo.ModelVersions(name)
	if err != nil && !errors.Is(err, tracking.ErrNotFound) {
		return fmt.Errorf("read %s: %w", s.to.URI(), err)
	}
	type key struct{ run, rel string }
	have := map[key]int{}
	for _, v := range destVersions {
		if v.RunID == "" {
			continue
		}
		if rel, ok := s.relSource(s.to, v); ok {
			if _, dup := have[key{v.RunID, rel}]; !dup {
				have[key{v.RunID, rel}] = v.Version
			}
		}
	}
	mapped := map[int]int{}
	for _, v := range versions {
		dRun, ok := s.runMap[v.RunID]
		if !ok || v.RunID == "" {
			continue
		}
		rel, ok := s.relSource(s.from, v)
		if !ok {
			s.res.Warnings = append(s.res.Warnings, fmt.Sprintf("%s version %d: source %s is not in its run's artifacts; not copied", name, v.Version, v.Source))
			continue
		}
		vr := VersionResult{Model: name, From: v.Version}
		if dv, ok := have[key{dRun, rel}]; ok {
			vr.To = dv
		} else if !s.opt.DryRun {
			dv, err := s.regTo.CreateModelVersion(name, "runs:/"+dRun+"/"+rel, dRun)
			if err != nil {
				return fmt.Errorf("version %d not copied: %w", v.Version, err)
			}
			vr.To, vr.Copied = dv, true
			have[key{dRun, rel}] = dv
		} else {
			vr.Copied = true
		}
		mapped[v.Version] = vr.To
		s.res.Versions = append(s.res.Versions, vr)
	}
	for _, v := range versions {
		dv, ok := mapped[v.Version]
		if !ok {
			continue
		}
		for _, alias := range v.Aliases {
			was, err := s.regTo.Alias(name, alias)
			if err != nil && !errors.Is(err, tracking.ErrNotFound) {
				return fmt.Errorf("alias %s: %w", alias, err)
			}
			if err == nil && was == dv && dv != 0 {
				continue
			}
			if !s.opt.DryRun {
				if err := s.regTo.SetAlias(name, alias, dv); err != nil {
					return fmt.Errorf("alias %s not set: %w", alias, err)
				}
			}
			s.res.Aliases = append(s.res.Aliases, AliasResult{Model: name, Alias: alias, Was: was, Now: dv})
		}
	}
	return nil
}

// relSource is where in its run's artifacts a version's model folder is:
// from a runs:/ source, or a source below the run's artifact URI.
func (s *syncer) relSource(rr tracking.RunReader, v tracking.ModelVersion) (string, bool) {
	if rest, ok := strings.CutPrefix(v.Source, "runs:/"); ok {
		id, rel, _ := strings.Cut(rest, "/")
		return strings.Trim(rel, "/"), id == v.RunID
	}
	run, err := rr.GetRun(v.RunID)
	if err != nil || run.ArtifactURI == "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(v.Source, strings.TrimRight(run.ArtifactURI, "/")+"/")
	if !ok {
		return "", false
	}
	if u, err := url.PathUnescape(rest); err == nil {
		rest = u
	}
	return strings.Trim(rest, "/"), rest != ""
}
