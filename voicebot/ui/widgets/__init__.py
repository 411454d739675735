"""Live audio widgets (pyqtgraph): waveform, log-mel spectrogram, level meter, and the
``AudioScope`` that combines them and drives them from one display timer."""
