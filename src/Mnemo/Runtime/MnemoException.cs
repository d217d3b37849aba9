namespace Mnemo;

/// <summary>An error caused by the user's input (a file, a field, a shape). Its message is shown as is.</summary>
public class MnemoException : Exception
{
    public MnemoException(string message) : base(message) { }
    public MnemoException(string message, Exception? inner) : base(message, inner) { }
}
