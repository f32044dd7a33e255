package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"petbreed/internal/onnx"
	"petbreed/internal/pipeline"
	"petbreed/internal/testassets"
	"petbreed/internal/testutil"
)

// TestBackbonePaths runs the pipeline, predict and serve end to end on the
// fp32 twin (the graph shape of the zoo's fp32 MobileNetV2 that `pull
// backbone` downloads: features found in the float graph, the export checked
// against the head by the pipeline), and on the int8 backbone with the
// mirror, a centre zoom and its mirror averaged in the exported graph (the
// export checked against the mean of the head over the four views). Both
// champions carry the pet check.
func TestBackbonePaths(t *testing.T) {
	if testing.Short() {
		t.Skip("two pipelines and two servers")
	}
	for _, tc := range []struct {
		name, backbone, config string
	}{
		{"fp32 twin", "mobilenetv2-12-fp32-twin.onnx", ""},
		{"int8 tta", "mobilenetv2-12-int8.onnx", "tta: [flip, c192, c192f]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("MLFLOW_TRACKING_URI", "file://"+filepath.Join(dir, "mlruns"))
			t.Setenv("PETBREED_CACHE", filepath.Join(dir, "cache"))
			t.Setenv("PETBREED_MODEL", "")
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, append(pipeline.DefaultConfigYAML(), tc.config...), 0o644); err != nil {
				t.Fatal(err)
			}
			data := testassets.Path(t, "pets-3breeds")
			code, out, errs := cli(t, "pipeline", "--quiet", "--json", "--data", data, "--config", cfg,
				"--backbone", testassets.Path(t, "backbone", tc.backbone))
			if code != 0 {
				t.Fatalf("pipeline: exit %d\n%s\n%s", code, out, errs)
			}
			var sum pipeline.Summary
			if err := json.Unmarshal([]byte(out), &sum); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			t.Logf("%s: test accuracy %.4f (%d images), selected %s; features %d images at %.0f images/s",
				tc.backbone, sum.TestAcc, sum.Test, sum.Selected, sum.Features.Images, sum.Features.PerSecond())
			if sum.TestAcc < 0.9 {
				t.Errorf("test accuracy %.4f", sum.TestAcc)
			}
			info, err := onnx.ParseInfo(readFile(t, sum.ModelPath))
			if err != nil {
				t.Fatal(err)
			}
			if len(info.Outputs) != 2 || info.Outputs[1].Name != onnx.ExportPetScore || info.Metadata["petbreed.pet_threshold"] == "" {
				t.Errorf("champion outputs %v, metadata %v", info.Outputs, info.MetadataKeys())
			}
			if tta := info.Metadata["petbreed.tta"]; (tc.config != "") != (tta == `["flip","c192","c192f"]`) {
				t.Errorf("petbreed.tta = %q", tta)
			}

			// predict: the test images' breeds, and the parrot is not a pet.
			imgs := []string{"Abyssinian_100.jpg", "Bengal_103.jpg", "american_bulldog_100.jpg"}
			args := []string{"predict", "--json", "-k", "1", "--model", sum.ModelURI}
			for _, name := range imgs {
				args = append(args, filepath.Join(data, "images", name))
			}
			parrot := testassets.Path(t, "photos", "parrot.jpg")
			code, out, errs = cli(t, append(args, parrot)...)
			if code != 0 {
				t.Fatalf("predict: exit %d: %s", code, errs)
			}
			rs := readResults(t, out)
			if len(rs) != 4 {
				t.Fatalf("predict:\n%s", out)
			}
			for i, want := range []string{"Abyssinian", "Bengal", "American Bulldog"} {
				if rs[i].Predictions[0].Label != want || rs[i].Pet == nil || !rs[i].Pet.IsPet {
					t.Errorf("%s: %+v, pet %+v", imgs[i], rs[i].Predictions, rs[i].Pet)
				}
			}
			if rs[3].Pet == nil || rs[3].Pet.IsPet {
				t.Errorf("parrot: pet %+v", rs[3].Pet)
			}

			// serve: the same answer over HTTP, with the pet check.
			root, err := filepath.Abs("../..") // where serve finds the runtime library
			if err != nil {
				t.Fatal(err)
			}
			url := testutil.StartServe(t, root, []string{"MLFLOW_TRACKING_URI=file://" + filepath.Join(dir, "mlruns")},
				"--model", sum.ModelPath)
			for i, p := range []string{filepath.Join(data, "images", imgs[1]), parrot} {
				resp, err := http.Post(url+"/api/predict", "application/octet-stream", bytes.NewReader(readFile(t, p)))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var got struct {
					TopK  []struct{ Label string } `json:"top_k"`
					Model struct{ Name, Version string }
					Pet   *struct {
						Score float32 `json:"score"`
						IsPet bool    `json:"is_pet"`
					}
				}
				if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || len(got.TopK) == 0 {
					t.Fatalf("serve %s: %d %s", filepath.Base(p), resp.StatusCode, body)
				}
				if i == 0 && got.TopK[0].Label != "Bengal" {
					t.Errorf("serve: %s", body)
				}
				if got.Pet == nil || got.Pet.IsPet != (i == 0) {
					t.Errorf("serve %s: pet check %s", filepath.Base(p), body)
				}
				// V2: the pet score is a second output tensor, the same.
				v2 := `{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],"data":["` +
					base64.StdEncoding.EncodeToString(readFile(t, p)) + `"]}]}`
				resp, err = http.Post(url+"/v2/models/"+got.Model.Name+"/infer", "application/json", strings.NewReader(v2))
				if err != nil {
					t.Fatal(err)
				}
				body, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				var ans struct {
					Outputs []struct {
						Name  string
						Shape []int
						Data  []float32
					}
				}
				if err := json.Unmarshal(body, &ans); err != nil || resp.StatusCode != 200 || len(ans.Outputs) != 2 ||
					ans.Outputs[1].Name != "pet_score" || len(ans.Outputs[1].Data) != 1 ||
					got.Pet == nil || math.Abs(float64(ans.Outputs[1].Data[0]-got.Pet.Score)) > 1e-6 {
					t.Errorf("V2 %s: %d %s", filepath.Base(p), resp.StatusCode, body)
				}
			}
		})
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
