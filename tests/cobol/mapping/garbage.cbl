       IDENTIFICATION DIVISION.
       PROGRAM-ID. GARBAGE.
      * How GnuCOBOL reads DISPLAY numbers holding bytes no MOVE writes.
       DATA DIVISION.
       WORKING-STORAGE SECTION.
       01 G-REC.
          05 G-U      PIC 9(3).
          05 G-S      PIC S9(3).
       01 G-RAW REDEFINES G-REC PIC X(6).
       01 G-OUT     PIC -9(5).
       PROCEDURE DIVISION.
           MOVE "  5 1x" TO G-RAW.
           COMPUTE G-OUT = G-U. DISPLAY G-OUT.
           COMPUTE G-OUT = G-S. DISPLAY G-OUT.
           MOVE "1:312z" TO G-RAW.
           COMPUTE G-OUT = G-U. DISPLAY G-OUT.
           COMPUTE G-OUT = G-S. DISPLAY G-OUT.
           MOVE "45612{" TO G-RAW.
           COMPUTE G-OUT = G-U. DISPLAY G-OUT.
           COMPUTE G-OUT = G-S. DISPLAY G-OUT.
           STOP RUN.
