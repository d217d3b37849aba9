using System.Text.Json.Nodes;
using Mnemo.Forecasting;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using TorchSharp;

namespace Mnemo.Tests.Forecasting;

/// <summary>Walk-forward forecasting: the data, the protocol's splits and baselines, no look-ahead, and that it learns.</summary>
[Collection(TorchCollection.Name)]
public class ForecastTests
{
    static ForecastConfig Tiny(int folds = 2, int window = 8, int horizon = 3, int steps = 5, MixerKind mixer = MixerKind.GatedDeltaNet) =>
        new ForecastConfig
        {
            Data = new ForecastDataConfig { Series = "generated", Window = window, Horizon = horizon, Folds = folds, TestFraction = 0.2 },
            Model = new ModelConfig { Mixer = mixer, DModel = 16, NumLayers = 1, NumHeads = 2, MlpRatio = 0 },
        } with
        {
            Training = new ForecastConfig().Training with { Steps = steps, WarmupSteps = 1, BatchSize = 8 },
        };

    static SeriesData Series(params double[][] rows) =>
        new("s", [.. Enumerable.Range(0, rows[0].Length).Select(i => $"c{i}")], rows, "test");

    [Fact]
    public void Csv_is_read_and_a_bad_row_is_named()
    {
        string dir = Directory.CreateTempSubdirectory("mnemo-series").FullName;
        try
        {
            var good = Path.Combine(dir, "good.csv");
            File.WriteAllText(good, "A,B\n1.5,2\n3,4.25\n");
            var s = SeriesFiles.ReadCsv(good);
            Assert.Equal(["A", "B"], s.Columns);
            Assert.Equal(4.25, s.Rows[1][1]);
            var bad = Path.Combine(dir, "bad.csv");
            File.WriteAllText(bad, "A,B\n1,2\n3,0\n");
            Assert.Contains("bad.csv:3: column \"B\" is \"0\"", Assert.Throws<MnemoException>(() => SeriesFiles.ReadCsv(bad)).Message);
            File.WriteAllText(bad, "A,B\n1,2,3\n");
            Assert.Contains("bad.csv:2: 3 values, but the header names 2 columns",
                Assert.Throws<MnemoException>(() => SeriesFiles.ReadCsv(bad)).Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_series_that_is_not_set_up_is_replaced_by_a_generated_one_with_a_note()
    {
        var s = SeriesFiles.Load("no-such-series-here", 3);
        Assert.Equal(SeriesFiles.GeneratedName, s.Name);
        Assert.Contains("not set up", s.Note);
        Assert.Equal(s.Rows[100], SeriesFiles.Load("no-such-series-here", 3).Rows[100]);    // seeded
    }

    [Fact]
    public void Errors_are_rmse_mae_and_mape_per_horizon()
    {
        double[][][] truth = [[[100], [200]], [[50], [100]]];                // two origins, H = 2, one column
        double[][][] forecast = [[[110], [180]], [[45], [100]]];
        var e = ForecastErrors.Of(forecast, truth);
        Assert.Equal(Math.Sqrt((100 + 25) / 2.0), e.Rmse[0], 12);
        Assert.Equal(7.5, e.Mae[0], 12);
        Assert.Equal(100 * (0.1 + 0.1) / 2, e.Mape[0], 12);
        Assert.Equal(Math.Sqrt(400 / 2.0), e.Rmse[1], 12);
        Assert.Equal(100 * 0.1 / 2, e.Mape[1], 12);
    }

    [Fact]
    public void Baselines_forecast_from_the_origin_and_the_same_phase_of_the_last_season()
    {
        var rows = Enumerable.Range(1, 100).Select(t => new double[] { t }).ToArray();     // y_t = t + 1
        var config = Tiny(folds: 1, window: 4, horizon: 7);
        var walk = new WalkForward(config, Series(rows));
        int first = walk.AllOrigins[0];
        Assert.Equal(walk.Splits[0] - 1, first);
        var persistence = walk.Persistence()[0];
        Assert.All(persistence, p => Assert.Equal(first + 1.0, p[0]));
        var seasonal = walk.SeasonalNaive()[0];
        // h = 1…5 read t + h − 5; h = 6, 7 read t + h − 10.
        Assert.Equal([first + 1 - 5 + 1.0, first + 2 - 5 + 1, first + 5 - 5 + 1, first + 6 - 10 + 1, first + 7 - 10 + 1],
            new[] { 0, 1, 4, 5, 6 }.Select(h => seasonal[h][0]));
        Assert.Equal(first + 7 + 1.0, walk.Truth()[0][6][0]);
        // Drift: the mean log return of the training part, ln(y_{s−1} / y_0) / (s − 1), h times over.
        int split = walk.Splits[0];
        double mu = Math.Log(split / 1.0) / (split - 1);
        Assert.Equal((first + 1.0) * Math.Exp(3 * mu), walk.Drift()[0][2][0], 9);
    }

    [Fact]
    public void Folds_partition_the_test_part_and_every_target_is_inside_the_series()
    {
        var walk = new WalkForward(Tiny(folds: 3), SeriesFiles.Generated(1, null));
        var origins = walk.AllOrigins;
        Assert.Equal(origins.Distinct().Count(), origins.Length);
        Assert.Equal(Enumerable.Range(origins[0], origins.Length), origins);
        Assert.Equal(walk.Splits[0] - 1, origins[0]);
        Assert.Equal(walk.Inputs.Length - 1 - 3, origins[^1]);
        for (int k = 0; k < 3; k++) Assert.All(walk.Origins(k), t => Assert.InRange(t, walk.Splits[k] - 1, walk.Splits[k + 1] - 2));
    }

    [Fact]
    public void A_forecast_reads_nothing_after_its_origin()
    {
        // Change every price after fold 1's last origin: fold 1's forecasts (training, scaling, windows) must not move;
        // fold 2's must (or the test could not fail).
        var config = Tiny();
        var series = SeriesFiles.Generated(2, null);
        var walk = new WalkForward(config, series);
        int lastOfFold1 = walk.Origins(0)[^1], count = walk.Origins(0).Length;
        var changed = series with { Rows = [.. series.Rows.Select((r, t) => t > lastOfFold1 ? r.Select(v => v * 1.5).ToArray() : r)] };
        var before = walk.RunModel("m").Forecasts;
        var after = new WalkForward(config, changed).RunModel("m").Forecasts;
        for (int i = 0; i < count; i++) Assert.Equal(before[i].SelectMany(h => h), after[i].SelectMany(h => h));
        Assert.NotEqual(before[count].SelectMany(h => h), after[count].SelectMany(h => h));
    }

    [Fact]
    public void A_model_learns_predictable_returns_that_persistence_cannot()
    {
        // Returns that repeat every 6 steps: a window of 12 determines the next ones exactly.
        var rows = new double[400][];
        double price = 100;
        for (int t = 0; t < rows.Length; t++)
        {
            price *= Math.Exp(0.02 * Math.Sin(2 * Math.PI * t / 6));
            rows[t] = [price];
        }
        var config = Tiny(folds: 1, window: 12, horizon: 3, steps: 300, mixer: MixerKind.Attention);
        config = config with { Training = config.Training with { Lr = 3e-3, WarmupSteps = 20 } };
        var walk = new WalkForward(config, Series(rows));
        var model = walk.RunModel("attention").Errors.MeanRmse;
        var persistence = ForecastErrors.Of(walk.Persistence(), walk.Truth()).MeanRmse;
        Assert.True(model < 0.3 * persistence, $"model RMSE {model:F4} against persistence {persistence:F4}");
    }

    [Fact]
    public void The_bundled_config_loads_and_is_univariate()
    {
        var c = ForecastConfig.Load(Path.Combine(Repository.Root, "configs", "forecast", "eustock-dax.json"));
        Assert.Equal(["DAX"], c.Data.Columns);
        var d = new ForecastConfig().Data;
        Assert.Equal((d.Series, d.Window, d.Horizon, d.Folds, d.TestFraction, d.Season),
            (c.Data.Series, c.Data.Window, c.Data.Horizon, c.Data.Folds, c.Data.TestFraction, c.Data.Season));
    }

    [Fact]
    public void Naming_a_section_keeps_the_forecasters_defaults_for_the_rest()
    {
        var c = ForecastConfig.Load(null, ["model.rnn.bidirectional=true", "training.steps=50"]);
        var d = new ForecastConfig();
        Assert.True(c.Model.Rnn.Bidirectional);
        Assert.Equal((d.Model.DModel, d.Model.MlpRatio), (c.Model.DModel, c.Model.MlpRatio));
        Assert.Equal(50, c.Training.Steps);
        Assert.Equal((d.Training.BatchSize, d.Training.Lr, d.Training.WeightDecay), (c.Training.BatchSize, c.Training.Lr,
            c.Training.WeightDecay));
    }

    [Fact]
    public void Bad_settings_name_their_field()
    {
        var e = Assert.Throws<ConfigException>(() => ForecastConfig.Load(null, ["data.columns=[\"DAX\"]", "data.targets=[\"SMI\"]"]));
        Assert.Contains("targets", e.Message);
        Assert.Contains("SMI not among columns", e.Message);
        var tooShort = Tiny(window: 2000);
        string Problem(ForecastConfig c) => Assert.Throws<MnemoException>(() => new WalkForward(c, SeriesFiles.Generated(0, null))).Message;
        Assert.Contains("too short", Problem(tooShort));
        var thin = Tiny(folds: 3, horizon: 10);
        thin = thin with { Data = thin.Data with { TestFraction = 0.01 } };                          // the last fold is shorter than H
        Assert.Contains("has no forecast origin", Problem(thin));
        var missing = Tiny() with { Data = Tiny().Data with { Columns = ["nope"] } };
        Assert.Contains("no column \"nope\"", Problem(missing));
    }

    [Fact]
    public void The_study_writes_its_results_and_plots()
    {
        string dir = Directory.CreateTempSubdirectory("mnemo-forecast").FullName;
        try
        {
            var summaries = ForecastStudy.Run(Tiny(steps: 2), ["aaren"], [0], dir);
            Assert.Equal(["persistence", "seasonal naive (m = 5)", "drift", "aaren"], summaries.Select(s => s.Name));
            Assert.Equal(1.0, summaries[0].RmseOverPersistence);
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, ForecastStudy.ResultsFile)))!;
            Assert.Equal(4, json["summaries"]!.AsArray().Count);
            Assert.True(File.Exists(Path.Combine(dir, "forecast-h1.png")));
            Assert.True(File.Exists(Path.Combine(dir, "forecast-h3.png")));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_reviews_forecasters_run_walk_forward_and_refuse_a_window_they_cannot_split()
    {
        using var scope = torch.NewDisposeScope();
        var window = torch.arange(2 * 8 * 3, torch.float32).view(2, 8, 3);                     // [B, L, F]
        var grids = ConvLstmWindow.Subsequences(window, 4);                                   // [B, 2, F, 1, 4]
        Assert.Equal([2, 2, 3, 1, 4], grids.shape);
        Assert.Equal(window[1, 6, 2].item<float>(), grids[1, 1, 2, 0, 2].item<float>());    // step 6 = subsequence 1, cell 2
        foreach (var name in new[] { "conv_lstm", "cnn" })
        {
            var c = ForecastStudy.Configure(Tiny(steps: 3), name);
            var result = new WalkForward(c, SeriesFiles.Generated(0, null)).RunModel(name);
            Assert.True(double.IsFinite(result.Errors.MeanRmse) && result.Parameters > 0, name);
        }
        var odd = ForecastStudy.Configure(Tiny() with { Conv = new() { Subsequence = 3 } }, "conv_lstm");
        Assert.Contains(odd.Validate(), p => p.Item1 == "conv.subsequence");
        var e = Assert.Throws<MnemoException>(() => ForecastStudy.Configure(Tiny(), "unet"));
        Assert.Contains("unknown mixer or forecaster \"unet\"", e.Message);
    }
}
