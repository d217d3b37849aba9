using Mnemo.Experiments;
using Mnemo.Runtime;
using static TorchSharp.torch;

namespace Mnemo.Tests.Experiments;

/// <summary>The moving-shapes generator, both forecasters' shapes, and a tiny run of the experiment.</summary>
[Collection(TorchCollection.Name)]
public class GridForecastTests
{
    [Fact]
    public void Moving_shapes_are_seeded_binary_glyphs_that_move()
    {
        using var scope = NewDisposeScope();
        var a = MovingShapes.Sample(8, 12, 10, 1, seed: 4);
        Assert.Equal([8, 12, 1, 10, 10], a.shape);
        Assert.True(a.eq(MovingShapes.Sample(8, 12, 10, 1, seed: 4)).all().item<bool>(), "the same seed gives the same frames");
        Assert.False(a.eq(MovingShapes.Sample(8, 12, 10, 1, seed: 5)).all().item<bool>(), "another seed gives other frames");
        Assert.True(a.eq(0).logical_or(a.eq(1)).all().item<bool>(), "pixels are 0 or 1");
        var perFrame = a.sum([2, 3, 4]);                                                // one glyph: 8 to 16 pixels on
        Assert.True(perFrame.ge(8).all().item<bool>() && perFrame.le(16).all().item<bool>(), "one whole glyph in every frame");
        Assert.True(a.select(1, 0).ne(a.select(1, 11)).flatten(1).any(1).all().item<bool>(), "every shape moves");
    }

    [Fact]
    public void Both_forecasters_predict_the_asked_number_of_frames()
    {
        using var scope = NewDisposeScope();
        TorchRuntime.Seed(2);
        var c = new GridForecastConfig { Size = 8, Hidden = 4, Kernel = 3, Layers = 2, FcHidden = 16 };
        var past = MovingShapes.Sample(3, 5, 8, 1, seed: 1);
        foreach (var model in Enum.GetValues<GridModel>())
        {
            var forecaster = (IGridForecaster)GridForecast.Build(model, c);
            Assert.Equal([3, 7, 1, 8, 8], forecaster.Forecast(past, 7).shape);
        }
    }

    [Fact]
    public void A_tiny_run_lowers_its_loss_and_is_scored_on_both_test_sets()
    {
        var c = new GridForecastConfig
        {
            Size = 8, Shapes = 1, TestShapes = 2, InputFrames = 4, OutputFrames = 3, Batch = 8, Steps = 40, Lr = 1e-2, Hidden = 4,
            Kernel = 3, Layers = 1, TestSequences = 16,
        };
        var run = GridForecast.Run(GridModel.ConvLstm, 1, c);
        Assert.Equal([1, 2], run.Scores.Select(s => s.Shapes));
        Assert.All(run.Scores, s => Assert.Equal(s.CrossEntropy, s.CrossEntropyPerFrame.Sum(), 1e-9));
        Assert.True(run.TrainLoss[^1] < 0.9 * run.TrainLoss[0], $"the loss fell from {run.TrainLoss[0]:F1} to {run.TrainLoss[^1]:F1}");
        Assert.Equal(3 * 8 * 8, run.Example.Length);
        var persistence = GridForecast.Persistence(c);
        Assert.All(persistence.Scores, s => Assert.InRange(s.Iou, 0, 1));
    }

    [Fact]
    public void Bad_settings_name_the_field()
    {
        Assert.Contains("kernel", Assert.Throws<MnemoException>(() => new GridForecastConfig { Kernel = 2 }.Validate()).Message);
        Assert.Contains("size", Assert.Throws<MnemoException>(() => new GridForecastConfig { Size = 4 }.Validate()).Message);
    }
}
