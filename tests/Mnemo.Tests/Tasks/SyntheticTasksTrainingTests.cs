using Mnemo.Tasks;
using Mnemo.Tests.Training;
using Mnemo.Training;

namespace Mnemo.Tests.Tasks;

/// <summary>Each synthetic task section drives a tiny 1-layer model through a few training steps and an evaluation.</summary>
[Collection(TorchCollection.Name)]
public class SyntheticTasksTrainingTests
{
    public static TheoryData<string> Sections => ["set_disjointness", "induction_heads", "parity_dms", "fact_chains"];

    static RunConfig WithTask(RunConfig c, string section) => section switch
    {
        "set_disjointness" => c with
        {
            Task = new SetDisjointnessConfig
            {
                VocabSize = 40,
                Train =
                [
                    new() { ShortLength = 3, LongLength = 8, NumExamples = 24 },
                    new() { ShortLength = 8, LongLength = 3, NumExamples = 24 },
                ],
                Test = [new() { ShortLength = 3, LongLength = 12, NumExamples = 8 }],
            },
        },
        "induction_heads" => c with
        {
            Task = new InductionHeadsConfig
            {
                Train = [new() { SeqLen = 24, NumExamples = 32 }],
                Test = [new() { SeqLen = 24, NumExamples = 8 }, new() { SeqLen = 48, NumExamples = 8 }],
            },
        },
        "parity_dms" => c with
        {
            Task = new ParityDmsConfig
            {
                Variant = BitTaskKind.Dms, N = 3,
                Train = [new() { SeqLen = 13, NumExamples = 32 }], Test = [new() { SeqLen = 16, NumExamples = 8 }],
            },
        },
        "fact_chains" => c with
        {
            Task = new FactChainsConfig
            {
                Qa = FactQuestion.Qa2, VocabSize = 32, MaxFacts = 4,
                Train = [new() { SeqLen = 32, NumExamples = 32 }], Test = [new() { SeqLen = 64, NumExamples = 8 }],
            },
        },
        _ => throw new ArgumentException(section),
    };

    [Theory]
    [MemberData(nameof(Sections))]
    public void A_tiny_model_trains_a_few_steps(string section)
    {
        var config = WithTask(TrainerTests.Tiny(steps: 4), section);
        Assert.Equal(section, config.TaskKind);
        RunConfig.Parse(config.ToJson(), "tiny");   // every section and slice validates
        using var dir = new Tmp.Dir();
        var outcome = new Trainer(config, dir.Path).Run(resume: false);
        Assert.Equal(4, outcome.Steps);
        Assert.InRange(outcome.TestAccuracy, 0, 1);
    }
}
