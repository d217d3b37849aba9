using Mnemo.Experiments;
using Mnemo.IO;
using Mnemo.Tasks;

namespace Mnemo.Tests.Experiments;

public class LengthGridTests
{
    sealed record Fixed : ITask
    {
        public int VocabSize => 8;
        public int LongestSeqLen() => 4;
        public TaskBatch[] TrainBatches() => [];
        public TaskBatch[] TestBatches() => [];
    }

    [Fact]
    public void Grid_keeps_the_trained_task_and_draws_one_test_slice_per_length()
    {
        int[] lengths = LengthGrid.Lengths(64, [1, 2, 4, 8, 16]);
        Assert.Equal([64, 128, 256, 512, 1024], lengths);
        var mqar = new MqarConfig { VocabSize = 2048, Train = [new() { SeqLen = 64, NumKvPairs = 8, NumExamples = 10 }] };
        var m = (MqarConfig)LengthGrid.TestAt(mqar, lengths, 5, 3);
        Assert.Equal(lengths, m.Test.Select(t => t.SeqLen));
        Assert.All(m.Test, t => Assert.Equal((8, 5), (t.NumKvPairs, t.NumExamples)));
        Assert.Equal((mqar.Train, 3), (m.Train, m.TestSeed));
        var p = (PasskeyConfig)LengthGrid.TestAt(new PasskeyConfig(), lengths, 5, 3);
        Assert.Equal(lengths, p.Test.Select(t => t.SeqLen));
        Assert.All(p.Test, t => Assert.Equal(DepthKind.Even, t.Depths));
        Assert.Equal([64, 128, 256, 512, 1024], p.TestBatches().Select(b => b.SeqLen));
        var e = Assert.Throws<ConfigException>(() => LengthGrid.TestAt(new Fixed(), lengths, 5, 3));
        Assert.Contains(nameof(ILengthScalableTask), e.Message);
    }
}
