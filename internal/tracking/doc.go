// Package tracking records runs and a model registry in MLflow's own file
// store layout, so that MLflow's UI and client read them as their own
// (mlflow ui --backend-store-uri file:///abs/mlruns, MlflowClient). It
// follows MLflow 2.17's FileStore (mlflow/store/tracking/file_store.py and
// mlflow/store/model_registry/file_store.py) and what it enforces when
// reading.
//
// # Layout
//
//	<root>/<experiment id>/meta.yaml        artifact_location, creation_time, experiment_id,
//	                                         last_update_time, lifecycle_stage, name
//	<root>/<exp>/<run id>/meta.yaml          artifact_uri (absolute file:// URI), end_time (null
//	                                         while running), entry_point_name, experiment_id,
//	                                         lifecycle_stage, run_id = run_uuid = folder name,
//	                                         run_name, source_*, start_time (ms), status (integer
//	                                         1-5), tags: [], user_id, deleted_time
//	<root>/<exp>/<run>/params/<key>          the value, no trailing newline
//	<root>/<exp>/<run>/tags/<key>            the value, no trailing newline
//	<root>/<exp>/<run>/metrics/<key>         lines "<ms timestamp> <value> <step>\n"
//	<root>/<exp>/<run>/artifacts/...         artifacts; an ONNX model is an MLflow model folder
//	                                         (model.onnx, MLmodel, conda.yaml, python_env.yaml,
//	                                         requirements.txt)
//	<root>/models/<name>/meta.yaml           name, creation_timestamp, last_updated_timestamp, ...
//	<root>/models/<name>/version-<N>/meta.yaml  version N, source, run_id, current_stage None, READY
//	<root>/models/<name>/aliases/<alias>     the version number, no newline
//
// Experiment "0" is "Default"; new experiments get an 18-digit random id as
// in MLflow. Run ids are UUID4s in 32 lowercase hex digits. Timestamps are
// milliseconds since the epoch. Keys (metric, param and tag names) may hold
// letters, digits, '_', '-', '.', ' ' and '/' (sub-folders), and must be
// normalised relative paths; anything else is refused before it is written,
// since one bad name makes MLflow's search fail for the whole experiment.
// Every YAML string is quoted, so PyYAML's YAML 1.1 rules cannot turn a run
// name like "yes" or "12:30" into a boolean or a number.
//
// # Crash safety
//
// A process killed at any instant (SIGKILL included) leaves nothing MLflow
// cannot read:
//
//   - Every file except metric files is written whole to a staging folder
//     with atomicfile and then renamed into place (or hard-linked, for
//     create-only files), so readers see the old file or the new one.
//     Staging happens in <root>/.petbreed-staging.trash, which MLflow
//     ignores (it skips root folders ending in ".trash"), never next to the
//     target: MLflow lists every file under params/, tags/, aliases/ and
//     artifacts/, and would show a temporary file as a param or an alias.
//   - Folders that MLflow requires to hold a meta.yaml (experiments, runs,
//     registered models, versions) and logged models are assembled in the
//     staging folder and renamed into place whole, so a folder never
//     appears without its meta.yaml. (MLflow skips run folders without
//     meta.yaml, but fails on a version-N or model folder without one.)
//   - A metric file is created whole with its first line, so it is never
//     empty (MLflow raises on an empty metric file); each later value is
//     appended with a single write(2) of one whole line on an O_APPEND
//     descriptor, so concurrent writers never interleave and a killed
//     writer leaves no partial line. (Metric appends are not fsynced: a
//     power loss may lose the last values.)
//   - Params are created exclusively (link(2)), which makes them immutable
//     across processes too. Registry version numbers are allotted under a
//     flock shared by all processes, and a version folder is renamed into
//     place only if it does not exist, so racing processes get distinct
//     versions.
//   - A run left RUNNING by a process that died is found by ReapStale from
//     its petbreed.pid, petbreed.host and petbreed.proc_start tags and
//     marked KILLED.
//
// Leftovers of a crash in the staging folder are removed by Open once a day
// old.
package tracking
