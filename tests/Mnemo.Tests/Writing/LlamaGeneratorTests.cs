using Mnemo.Llama;
using Mnemo.Writing;

namespace Mnemo.Tests.Writing;

/// <summary>The GGUF adapter on a tiny random llama model written by the test: it loads, samples repeatably, runs the loop,
/// and refuses bad files by name.</summary>
public class LlamaGeneratorTests
{
    [Fact]
    public void A_gguf_model_samples_the_same_text_for_the_same_seed_and_runs_the_loop()
    {
        using var dir = new Tmp.Dir();
        string path = dir["tiny.gguf"];
        TinyGguf.Write(path);
        string First(long seed)
        {
            using var g = LlamaGenerator.Open(path, tokens: 12, temperature: 0.8, topK: 20, seed: seed, contextSize: 512, threads: 1);
            return g.Generate("Output Paragraph:\nOnce upon a time", 0);
        }
        string a = First(7);
        Assert.NotEmpty(a);
        Assert.Equal(a, First(7));
        Assert.NotEqual(a, First(8));

        using var generator = LlamaGenerator.Open(path, tokens: 8, temperature: 0.8, topK: 20, seed: 1, contextSize: 512, threads: 1);
        var writer = new RecurrentWriter(generator, new NgramEmbedder(), new WriterOptions { Attempts = 2 });
        var state = RecurrentWriter.Start("A village sat by the sea.", "Go on.");
        for (int i = 0; i < 2; i++) state = writer.Step(state).Next;
        Assert.Equal(2, state.Step);
        Assert.Equal(2, state.LongTerm.Count);
        Assert.Equal(2, state.Fallbacks);                                               // random weights never write the sections
    }

    [Fact]
    public void Missing_and_foreign_files_are_refused_by_name()
    {
        using var dir = new Tmp.Dir();
        var missing = Assert.Throws<MnemoException>(() => LlamaGenerator.Open(dir["none.gguf"], 8, 0.8, 20, 1));
        Assert.Contains("none.gguf does not exist", missing.Message);
        File.WriteAllText(dir["notes.gguf"], "these are not weights");
        var foreign = Assert.Throws<MnemoException>(() => LlamaGenerator.Open(dir["notes.gguf"], 8, 0.8, 20, 1));
        Assert.Contains("notes.gguf is not a GGUF file", foreign.Message);
        TinyGguf.Write(dir["cut.gguf"]);
        var bytes = File.ReadAllBytes(dir["cut.gguf"]);
        File.WriteAllBytes(dir["cut.gguf"], bytes[..4096]);
        var cut = Assert.Throws<MnemoException>(() => LlamaGenerator.Open(dir["cut.gguf"], 8, 0.8, 20, 1, contextSize: 512));
        Assert.Contains("llama.cpp could not load", cut.Message);
        Assert.Contains("key-value", cut.Message);                                      // llama.cpp's own reason
    }
}
