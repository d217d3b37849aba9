using Mnemo.Models;
using Mnemo.Tasks.LanguageModeling;
using Mnemo.Text;
using Mnemo.Training;

namespace Mnemo.Cli.Commands;

/// <summary>A checkpoint of a language model trained on text (task kind lm): the model, its tokenizer and the held-out tail.</summary>
sealed record TextCheckpoint(string Dir, LanguageModel Model, ITokenizer Tokenizer, LanguageModelingConfig Task)
{
    public static TextCheckpoint Load(string path)
    {
        var (dir, run, model) = Checkpoint.LoadModel(path);
        if (run.Task is not LanguageModelingConfig lm)
            throw new MnemoException($"--checkpoint: {dir} was trained on task {run.Task.GetType().Name}, not on text; " +
                "train one with a task of kind lm (e.g. mnemo train -c configs/lm-attention.json)");
        return new TextCheckpoint(dir, model, Tokenizers.Get(lm.Text.Tokenizer), lm);
    }

    /// <summary>The text the model was not trained on: the corpus after the held-out cut.</summary>
    public string HeldOutText()
    {
        var corpus = Task.Text.Load();
        return corpus.Text[LanguageModeling.Split(Task).HeldOutStart..];
    }
}
