package tracking

// Names of what the pipeline logs and the page and the CLI read back: one
// place, so that a writer and its readers cannot drift apart.

// Per-epoch metrics (step = epoch).
const (
	MetricTrainLoss = "train_loss"
	MetricTrainAcc  = "train_acc"
	MetricValLoss   = "val_loss"
	MetricValAcc    = "val_acc"
)

// Metrics logged once per run.
const (
	MetricTrainSeconds = "train_seconds"
	MetricBestEpoch    = "best_epoch"
	MetricFinalValAcc  = "final_val_acc"
	MetricFinalValLoss = "final_val_loss"
	MetricTestAcc      = "test_acc"
	MetricTestLoss     = "test_loss"
)

// HistoryMetrics are the per-epoch metrics, in the order the page shows them.
var HistoryMetrics = []string{MetricTrainLoss, MetricTrainAcc, MetricValLoss, MetricValAcc}

// Artifacts of a run (paths below its artifact root, '/'-separated).
const (
	ArtifactClassLabels  = "class_labels.json" // {"classes": [...]}
	ArtifactModel        = "model"             // the MLflow model folder of the exported ONNX model
	ArtifactLossPlot     = "plots/loss.png"
	ArtifactAccuracyPlot = "plots/accuracy.png"
)

// ArtifactReport is a split's evaluation, reports/<split>.json
// ({"split", "confusion", "labels", "report"}).
func ArtifactReport(split string) string { return "reports/" + split + ".json" }

// ArtifactReportText is a split's evaluation as text, reports/<split>.txt.
func ArtifactReportText(split string) string { return "reports/" + split + ".txt" }

// ArtifactConfusionPlot is a split's confusion matrix, plots/confusion_<split>.png.
func ArtifactConfusionPlot(split string) string { return "plots/confusion_" + split + ".png" }

// Tags the pipeline sets on runs.
const (
	TagSelected    = "petbreed.selected"     // "true" on the experiment chosen by validation
	TagChampionRun = "petbreed.champion_run" // on the selected run: the id of its refit (champion) run
)

// ChampionAlias is the alias the pipeline points at the version it registers.
const ChampionAlias = "champion"
