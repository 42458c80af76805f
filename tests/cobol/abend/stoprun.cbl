      *> STOPRUN - a called program that ends the whole run unit with
      *> STOP RUN and RETURN-CODE 12, instead of GOBACK to its caller.
       IDENTIFICATION DIVISION.
       PROGRAM-ID. STOPRUN.
       DATA DIVISION.
       LINKAGE SECTION.
       01  LK-TEXT                 PIC X(8).
       PROCEDURE DIVISION USING LK-TEXT.
           MOVE "STOPPING" TO LK-TEXT
           DISPLAY "STOPRUN: stopping the run unit"
           MOVE 12 TO RETURN-CODE
           STOP RUN.
