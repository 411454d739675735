; Inno Setup 6 script for the Voicebot Windows installer.
;
; Build the bundle first (on Windows, in the project's venv; see README.md next to this
; file), then compile this script for one variant:
;
;   iscc /DVariant=cpu  packaging\windows\voicebot.iss
;   iscc /DVariant=cuda packaging\windows\voicebot.iss
;
; Variant "cpu":  the venv holds the CPU build of torch (download.pytorch.org/whl/cpu);
;                 about 1 GB installed, runs on every PC.
; Variant "cuda": the venv holds the CUDA 12.8 build of torch (download.pytorch.org/whl/cu128)
;                 and onnxruntime-gpu; about 4-5 GB installed; needs an NVIDIA driver >= 570.
;                 Without a GPU it still runs, on the CPU.
; Both read the bundle from dist-<Variant>\voicebot (PyInstaller's --distpath), which
; holds voicebot-gui.exe (windowed: what the shortcuts start) and voicebot.exe (console:
; the command line and `voicebot.exe --self-test`).

#ifndef Variant
  #define Variant "cpu"
#endif
#if Variant != "cpu" && Variant != "cuda"
  #error Variant must be cpu or cuda
#endif
#define AppName "Voicebot"
#define AppVersion "0.1.0"
#define Root AddBackslash(SourcePath) + "..\.."
#define Bundle Root + "\packaging\build\dist-" + Variant + "\voicebot"

[Setup]
; One AppId for both variants: installing the other variant replaces the first.
AppId={{6B0E64A2-3C1F-4F57-9A55-0C2F3E0D7B11}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion} ({#Variant})
AppPublisher=voicebot developers
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user install by default (no administrator needed); the user may choose all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Root}\packaging\build
OutputBaseFilename=voicebot-{#AppVersion}-windows-x64-{#Variant}-setup
; Made by the spec from assets\icons (bundle_files.platform_icon) in its work folder.
SetupIconFile={#Root}\packaging\build\work\voicebot\voicebot.ico
UninstallDisplayIcon={app}\voicebot-gui.exe
; The bundle is mostly already-compressed model weights and DLLs: lzma2 at "normal"
; gains nearly as much as "ultra" in a fraction of the time; solid off keeps memory low.
Compression=lzma2/normal
SolidCompression=no
DiskSpanning=no
WizardStyle=modern
; Inno Setup takes files up to 4 GB each without disk spanning; the CUDA variant's
; largest DLLs (torch_cuda, cudnn, cublasLt) must stay below that.

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; Everything PyInstaller put in the bundle: the two executables and _internal\ (Python,
; Qt, torch, onnxruntime, PortAudio, the default models, assets, models\catalog.toml).
Source: "{#Bundle}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; A previous version's files must not linger beside the new ones.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\voicebot-gui.exe"; WorkingDir: "{app}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\voicebot-gui.exe"; WorkingDir: "{app}"; Tasks: desktopicon

[Run]
Filename: "{app}\voicebot-gui.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Python bytecode caches written at run time. User data (settings, history, models,
; recordings in %LOCALAPPDATA%\voicebot) is deliberately kept.
Type: filesandordirs; Name: "{app}\_internal\__pycache__"
