using System.CommandLine;
using System.Globalization;
using Mnemo.Forecasting;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Runtime;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo forecast`: walk-forward forecasting of a real series by any mixers against the naive baselines.</summary>
static class ForecastCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config", "-c")
        {
            Description = "Forecast config file (docs/forecasting.md). Default: EuStockMarkets, all four indices, window 64, horizon 10, " +
                "3 folds over the last 30%",
        };
        var mixers = new Option<string[]>("--mixers")
        {
            Description = "Mixers to forecast with, one model each (any of `mnemo list`), or the review's conv_lstm and cnn forecasters. " +
                "Default: attention gated_delta_net aaren",
            AllowMultipleArgumentsPerToken = true,
        };
        var seeds = new Option<int[]>("--seeds")
        {
            Description = "Seeds per mixer (model initialisation and batch order); medians and ranges are reported. Default: 0 1 2",
            AllowMultipleArgumentsPerToken = true,
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a field, e.g. --set data.horizon=5, --set 'data.columns=[\"DAX\"]' (univariate), " +
                "--set training.steps=800 (repeatable)",
        };
        var output = new Option<string>("--out", "-o")
        {
            Description = "Output folder: forecast.json, forecast-h1.png, forecast-hH.png", DefaultValueFactory = _ => "runs/forecast",
        };
        var threads = new Option<int>("--threads")
        {
            Description = "libtorch threads (0 = training.threads, whose 0 is all cores)", DefaultValueFactory = _ => 0,
        };
        var command = new Command("forecast",
            "Forecast a real series (R's EuStockMarkets by default; scripts/setup-series.sh) H steps ahead, walk-forward with no " +
            "look-ahead: for each mixer and seed a model is trained per fold on everything before the fold's test segment and " +
            "forecasts every origin in it. Prints RMSE, MAE and MAPE against persistence, seasonal-naive and drift forecasts; writes " +
            "forecast.json and plots of the forecasts against the truth.")
        {
            config, mixers, seeds, set, output, threads,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var c = ForecastConfig.Load(parse.GetValue(config), parse.GetValue(set) ?? []);
            var kinds = (parse.GetValue(mixers) is { Length: > 0 } m ? m : ["attention", "gated_delta_net", "aaren"])
                .Select(name => name.Trim()).Distinct().ToArray();
            foreach (var name in kinds) ForecastStudy.Configure(c, name);                  // an unknown name fails before any training
            var seedList = parse.GetValue(seeds) is { Length: > 0 } s ? s : [0, 1, 2];
            TorchRuntime.Initialise(parse.GetValue(threads) is > 0 and var n ? n : c.Training.Threads);
            string outDir = parse.GetValue(output)!;
            var summaries = ForecastStudy.Run(c, kinds, seedList, outDir, Console.WriteLine);
            Table(summaries, c);
            Console.WriteLine($"wrote {Path.Combine(outDir, ForecastStudy.ResultsFile)}, forecast-h1.png and " +
                $"forecast-h{c.Data.Horizon}.png");
            return 0;
        }));
        return command;
    }

    static void Table(IReadOnlyList<ForecastSummary> rows, ForecastConfig c)
    {
        Report.WideWhenRedirected();
        string F(double v, string format = "F2") => v.ToString(format, CultureInfo.InvariantCulture);
        var table = new Table().Title($"price forecasts 1–{c.Data.Horizon} steps ahead, walk-forward over {c.Data.Folds} folds " +
            "(medians over seeds, lowest–highest)");
        table.AddColumns("forecaster", "seeds", "RMSE", "RMSE ÷ persistence", "MAE", "MAPE %", $"MAPE h=1", $"MAPE h={c.Data.Horizon}",
            "params", "train s");
        foreach (var r in rows)
            table.AddRow(r.Name, r.Seeds.ToString(CultureInfo.InvariantCulture),
                r.Seeds > 1 ? $"{F(r.Rmse)} ({F(r.RmseLow)}–{F(r.RmseHigh)})" : F(r.Rmse), F(r.RmseOverPersistence, "F3"), F(r.Mae),
                r.Seeds > 1 ? $"{F(r.Mape, "F3")} ({F(r.MapeLow, "F3")}–{F(r.MapeHigh, "F3")})" : F(r.Mape, "F3"), F(r.MapeFirst, "F3"),
                F(r.MapeLast, "F3"), r.Parameters.ToString("N0", CultureInfo.InvariantCulture), F(r.TrainSeconds, "F0"));
        AnsiConsole.Write(table);
    }
}
